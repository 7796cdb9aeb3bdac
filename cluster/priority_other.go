//go:build !linux

package cluster

import "net"

// setPriority is a no-op off Linux.
func setPriority(*net.TCPConn, Channel) {}
