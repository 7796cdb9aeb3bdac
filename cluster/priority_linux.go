package cluster

import (
	"net"

	"golang.org/x/sys/unix"
)

// Socket priorities of the lanes (Linux's TC_PRIO_* values, which the
// default pfifo_fast qdisc maps to its bands; 0..6 need no privilege).
const (
	controlPriority = 6 // TC_PRIO_INTERACTIVE: band 0, before everything else
	bulkPriority    = 2 // TC_PRIO_BULK: band 2, after ordinary traffic
)

// IP type-of-service of the lanes, for networks that honour it (DSCP CS5
// for the control ring's small sums, CS1 "lower effort" for buckets).
const (
	controlTOS = 0xa0
	bulkTOS    = 0x20
)

// setPriority marks the lane's packets by channel, best effort: on a
// shared egress queue a control message (one BatchNorm sum, which backward
// waits for) then overtakes the bucket bytes queued before it instead of
// waiting for all of them.
func setPriority(c *net.TCPConn, ch Channel) {
	prio, tos := controlPriority, controlTOS
	if ch != Control {
		prio, tos = bulkPriority, bulkTOS
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		// TOS first: setting it also resets the socket priority (from the
		// old TOS bits), which SO_PRIORITY then overrides.
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos)
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PRIORITY, prio)
	})
}
