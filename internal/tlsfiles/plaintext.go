package tlsfiles

import (
	"fmt"
	"net"
	"strings"
)

// Loopback reports whether the host of hostport is a loopback address
// ("localhost", 127.0.0.0/8, ::1). Anything else, the wildcard 0.0.0.0
// and :: included, is reachable from other hosts.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PlaintextProblem explains why a process must not serve addr in plaintext
// (TLS off, addr not loopback, no --insecure), or returns "".
func PlaintextProblem(f Files, insecure bool, addr string) string {
	if f.Enabled() || insecure || addr == "" || Loopback(addr) {
		return ""
	}
	return fmt.Sprintf("= %s is not a loopback address and TLS is off: anyone who reaches it could "+
		"call everything; give --tls-cert, --tls-key and --tls-ca (`whorl certs` makes them), or "+
		"--insecure to serve plaintext anyway", addr)
}
