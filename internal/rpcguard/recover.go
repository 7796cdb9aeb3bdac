package rpcguard

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Recovery is the panic recovery of the server named server ("coordinator",
// "worker"), logging to log: its unary and stream interceptors, for
// grpc.ChainUnaryInterceptor and grpc.ChainStreamInterceptor (first, so
// that it also catches the interceptors after it).
type Recovery struct {
	log    *slog.Logger
	server string
}

// New is the recovery of server, logging to log (nil: slog.Default()).
func New(log *slog.Logger, server string) Recovery {
	if log == nil {
		log = slog.Default()
	}
	return Recovery{log: log, server: server}
}

// Unary recovers a unary handler's panic.
func (r Recovery) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer r.recovered(info.FullMethod, &err)
	return h(ctx, req)
}

// Stream recovers a stream handler's panic.
func (r Recovery) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer r.recovered(info.FullMethod, &err)
	return h(srv, ss)
}

// Options are the server options that put Unary and Stream in the chains.
func (r Recovery) Options() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(r.Unary), grpc.ChainStreamInterceptor(r.Stream)}
}

// recovered logs a recovered panic with its stack and sets *err.
func (r Recovery) recovered(method string, err *error) {
	if p := recover(); p != nil {
		r.log.Error("handler panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "%s: internal error (the %s logged it)", method, r.server)
	}
}
