package cluster

import (
	"fmt"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

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

// Encoding is how a ring sends the values of its chunks.
type Encoding int

const (
	// Float32 sends the values as they are: the result is the exact
	// float32 ring-order sum (RingOrderSum).
	Float32 Encoding = iota
	// BFloat16 sends half the bytes: every partial sum is rounded to
	// bfloat16 (relative error 2^-8) before it leaves a member, so the
	// result is within N*2^-8*sum|x_i| of the exact sum; it is still
	// bit-identical on every member. For gradients, not for statistics.
	BFloat16
)

// String names the encoding.
func (e Encoding) String() string {
	if e == BFloat16 {
		return "bfloat16"
	}
	return "float32"
}

// wire is the encoding's proto value.
func (e Encoding) wire() ringv1.Encoding {
	if e == BFloat16 {
		return ringv1.Encoding_ENCODING_BFLOAT16
	}
	return ringv1.Encoding_ENCODING_FLOAT32
}
