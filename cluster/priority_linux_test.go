package cluster

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetPriorityMarksByChannel: control lanes get the interactive socket
// priority and DSCP CS5, bulk lanes the bulk priority and CS1 (the TOS
// write must not reset the priority).
func TestSetPriorityMarksByChannel(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		ch        Channel
		prio, tos int
	}{{Control, 6, 0xa0}, {Bulk, 2, 0x20}} {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		setPriority(c.(*net.TCPConn), tc.ch)
		raw, _ := c.(*net.TCPConn).SyscallConn()
		var prio, tos int
		var gerr error
		_ = raw.Control(func(fd uintptr) {
			if prio, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PRIORITY); gerr == nil {
				tos, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS)
			}
		})
		c.Close()
		if gerr != nil || prio != tc.prio || tos != tc.tos {
			t.Errorf("%v: priority %d tos %#x (%v), want %d %#x", tc.ch, prio, tos, gerr, tc.prio, tc.tos)
		}
	}
}
