package cluster

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// Buffer pool tiers: powers of two from 256 B to 8 MiB.
const (
	minPoolShift = 8
	maxPoolShift = 23
)

// dirtyPool is a mem.BufferPool of power-of-two byte slices that, unlike
// gRPC's default pool, does not zero a buffer it hands out again: every
// buffer of the ring's streams is completely overwritten (a frame read or a
// chunk marshalled), so zeroing would only be one more pass over the data.
type dirtyPool struct {
	tiers [maxPoolShift + 1]sync.Pool
}

// bufPool is the pool of the ring's connections and codec.
var bufPool = &dirtyPool{}

var _ mem.BufferPool = bufPool

// Get returns a slice of length n.
func (p *dirtyPool) Get(n int) *[]byte {
	shift := max(minPoolShift, bits.Len(uint(n-1)))
	if n <= 0 {
		shift = minPoolShift
	}
	if shift > maxPoolShift {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[shift].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// Put returns a slice obtained from Get.
func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	shift := bits.Len(uint(c)) - 1
	if c == 0 || c != 1<<shift || shift < minPoolShift || shift > maxPoolShift {
		return
	}
	*b = (*b)[:0]
	p.tiers[shift].Put(b)
}
