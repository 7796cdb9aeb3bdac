// Package rpcguard holds the gRPC server interceptor every whorl server
// puts first in its chain: a handler's panic becomes codes.Internal naming
// the method, logged with its stack, and the process lives on (the
// coordinators' servers and the workers' ring and health server alike). A
// caller learns only that the server failed; the log has the rest.
package rpcguard
