package cluster

import "fmt"

// Channel tells apart the rings that the members of one generation run side
// by side. Each channel's ring has its own lanes (connections) and its own
// sequence of collectives, so a long collective on one channel never delays
// the collectives of another: a training step keeps SyncBatchNorm's small
// sums on Control while its gradient buckets travel on Bulk, overlapped
// with backward (the way NCCL users give bucketed gradients a communicator
// of their own).
type Channel uint32

// The channels whorl uses.
const (
	// Control carries the ordered small collectives of a step (batch
	// statistics, loss, votes) and the weight broadcast; NewRing joins it.
	Control Channel = 0
	// Bulk carries gradient buckets started during backward.
	Bulk Channel = 1
)

// String names the channel.
func (c Channel) String() string {
	switch c {
	case Control:
		return "control"
	case Bulk:
		return "bulk"
	}
	return fmt.Sprintf("channel %d", uint32(c))
}

// suffix qualifies a generation in messages: empty for Control, whose
// messages read as before.
func (c Channel) suffix() string {
	if c == Control {
		return ""
	}
	return " (" + c.String() + ")"
}
