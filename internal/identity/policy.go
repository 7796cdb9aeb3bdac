package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rule is who may call one gRPC method.
type Rule struct {
	// Roles may call the method.
	Roles []Role
	// WorkerOf, when set, returns the worker id a request message acts for
	// (ok false when the message names none, such as a stream's data
	// chunks); a worker may then act only for itself: the id must equal
	// its identity's Name. It is checked on every message of a stream.
	WorkerOf func(msg any) (id string, ok bool)
}

// Policy is one gRPC server's authorization table. A method it does not
// name is refused (deny by default).
type Policy struct {
	// Server names the server in denials ("coordinator").
	Server string
	// Methods maps a full method name ("/pkg.Service/Method") to its rule;
	// a key ending in "/" is a whole service's rule ("/pkg.Service/").
	Methods map[string]Rule
	// Denied, when set, is told of every refusal (to log and count it).
	Denied func(method string, id ID, err error)
}

// WorkerID is a WorkerOf for messages with a worker_id field.
func WorkerID(msg any) (string, bool) {
	m, ok := msg.(interface{ GetWorkerId() string })
	if !ok {
		return "", false
	}
	return m.GetWorkerId(), true
}

// rule returns the method's rule, or the service's.
func (p Policy) rule(method string) (Rule, bool) {
	if r, ok := p.Methods[method]; ok {
		return r, true
	}
	if i := strings.LastIndex(method, "/"); i > 0 {
		r, ok := p.Methods[method[:i+1]]
		return r, ok
	}
	return Rule{}, false
}

// Authorize decides a call: nil, or a gRPC status error (Unauthenticated
// or PermissionDenied) naming the method, the role and the id. A
// plaintext caller is allowed (see the package doc). msg is the request
// (nil for a stream before its first message).
func (p Policy) Authorize(ctx context.Context, method string, msg any) (ID, error) {
	id, tls, err := FromContext(ctx)
	if err != nil {
		return id, p.deny(method, id, codes.Unauthenticated, err)
	}
	if !tls {
		return id, nil
	}
	r, ok := p.rule(method)
	if !ok {
		return id, p.deny(method, id, codes.PermissionDenied,
			fmt.Errorf("%w: %s: %s is not a method %s serves to anyone", ErrPermissionDenied, id, method, p.Server))
	}
	if !slices.Contains(r.Roles, id.Role) {
		return id, p.deny(method, id, codes.PermissionDenied,
			fmt.Errorf("%w: %s (role %s) may not call %s; %s allows %s", ErrPermissionDenied, id, id.Role, method, p.Server, roleList(r.Roles)))
	}
	return id, p.checkWorker(method, id, r, msg)
}

// checkWorker refuses a worker acting for another worker's id.
func (p Policy) checkWorker(method string, id ID, r Rule, msg any) error {
	if r.WorkerOf == nil || msg == nil || id.Role != Worker {
		return nil
	}
	if w, ok := r.WorkerOf(msg); ok && w != id.Name {
		return p.deny(method, id, codes.PermissionDenied,
			fmt.Errorf("%w: %s may act only for worker %q, not %q (%s)", ErrPermissionDenied, id, id.Name, w, method))
	}
	return nil
}

// deny reports the refusal and returns it as a status with code.
func (p Policy) deny(method string, id ID, code codes.Code, err error) error {
	if p.Denied != nil {
		p.Denied(method, id, err)
	}
	return status.Error(code, err.Error())
}

// UnaryInterceptor authorizes every unary call before its handler.
func (p Policy) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if _, err := p.Authorize(ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamInterceptor authorizes every stream when it opens, and each
// received message against the rule's WorkerOf.
func (p Policy) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		id, err := p.Authorize(ss.Context(), info.FullMethod, nil)
		if err != nil {
			return err
		}
		r, _ := p.rule(info.FullMethod)
		if r.WorkerOf == nil || id.Role != Worker {
			return h(srv, ss)
		}
		return h(srv, &checkedStream{ServerStream: ss, p: p, method: info.FullMethod, id: id, rule: r})
	}
}

// checkedStream checks each received message's worker id.
type checkedStream struct {
	grpc.ServerStream
	p      Policy
	method string
	id     ID
	rule   Rule
}

// RecvMsg receives m and refuses it when it acts for another worker.
func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.p.checkWorker(s.method, s.id, s.rule, m)
}
