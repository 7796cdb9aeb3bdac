package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// memRings is an in-memory RingFactory: the members of one generation share
// a hub that sums their buffers in rank order (so every member gets the
// same bits). Closing any member breaks the generation, as a dropped gRPC
// stream does in the real ring.
type memRings struct {
	mu     sync.Mutex
	hubs   map[uint64]*hub
	joined map[string]uint64 // member address -> newest generation joined
}

func newMemRings() *memRings { return &memRings{hubs: map[uint64]*hub{}, joined: map[string]uint64{}} }

type hub struct {
	mu sync.Mutex
	n  int
	// gracefulAfterFailure counts members that closed the ring gracefully
	// after one of their own collectives failed (a real ring would wait
	// for a next member that may be gone: they must Abort).
	gracefulAfterFailure int
	rounds               map[int]*round
	broken               chan struct{}
	once                 sync.Once
}

type round struct {
	bufs    [][]float32
	arrived int
	sum     []float32
	done    chan struct{}
	err     error
}

type memRing struct {
	h      *hub
	rank   int
	seq    int
	failed bool // a collective of this member failed
}

// NewRing joins generation gen; gr is ignored: the hub never makes a
// started sum delay a later one, and sums exactly.
func (m *memRings) NewRing(ctx context.Context, gen uint64, members, _ []string, rank int, _ GradReduce) (Ring, error) {
	if rank < 0 || rank >= len(members) {
		return nil, fmt.Errorf("rank %d out of range 0..%d", rank, len(members)-1)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.joined[members[rank]]; ok && gen <= last {
		return nil, fmt.Errorf("memring: %s already joined generation %d, cannot join %d", members[rank], last, gen)
	}
	m.joined[members[rank]] = gen
	h := m.hubs[gen]
	if h == nil {
		h = &hub{n: len(members), rounds: map[int]*round{}, broken: make(chan struct{})}
		m.hubs[gen] = h
	}
	return &memRing{h: h, rank: rank}, ctx.Err()
}

func (r *memRing) AllReduceSum(ctx context.Context, buf []float32) error {
	return r.wait(ctx, r.arrive(buf), buf)
}

// Start hands buf to the hub now (fixing its place in the order) and sums
// it in the background.
func (r *memRing) Start(ctx context.Context, buf []float32) Waiter {
	rd := r.arrive(buf)
	w := &memWaiter{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = r.wait(ctx, rd, buf)
	}()
	return w
}

type memWaiter struct {
	done chan struct{}
	err  error
}

func (w *memWaiter) Wait() error {
	<-w.done
	return w.err
}

// arrive adds a copy of buf to this member's next round.
func (r *memRing) arrive(buf []float32) *round {
	h := r.h
	seq := r.seq
	r.seq++
	h.mu.Lock()
	defer h.mu.Unlock()
	rd := h.rounds[seq]
	if rd == nil {
		rd = &round{bufs: make([][]float32, h.n), done: make(chan struct{})}
		h.rounds[seq] = rd
	}
	rd.bufs[r.rank] = append([]float32(nil), buf...)
	rd.arrived++
	if rd.arrived == h.n {
		rd.sum, rd.err = sumInOrder(rd.bufs)
		close(rd.done)
	}
	return rd
}

// wait waits for round rd and copies its sum into buf.
func (r *memRing) wait(ctx context.Context, rd *round, buf []float32) error {
	h := r.h
	select {
	case <-rd.done:
	case <-h.broken:
		r.fail()
		return errors.New("memring: ring broken")
	case <-ctx.Done():
		r.fail()
		h.breakRing()
		return ctx.Err()
	}
	if rd.err != nil {
		return rd.err
	}
	copy(buf, rd.sum)
	return nil
}

func sumInOrder(bufs [][]float32) ([]float32, error) {
	sum := make([]float32, len(bufs[0]))
	for _, b := range bufs {
		if len(b) != len(sum) {
			return nil, fmt.Errorf("memring: buffer lengths %d and %d differ", len(b), len(sum))
		}
		for i, v := range b {
			sum[i] += v
		}
	}
	return sum, nil
}

func (h *hub) breakRing() { h.once.Do(func() { close(h.broken) }) }

func (r *memRing) SetStep(uint64) {}

// DirectLanes is 0: an in-memory ring has no TCP lanes.
func (r *memRing) DirectLanes() int { return 0 }

// fail records that a collective of this member failed.
func (r *memRing) fail() {
	r.h.mu.Lock()
	r.failed = true
	r.h.mu.Unlock()
}

func (r *memRing) Close() error {
	r.h.mu.Lock()
	if r.failed {
		r.h.gracefulAfterFailure++
	}
	r.h.mu.Unlock()
	r.h.breakRing()
	return nil
}

func (r *memRing) Abort() { r.h.breakRing() }

// gracefulAfterFailure sums the hubs' counts of graceful closes by members
// whose own collective had failed.
func (m *memRings) gracefulAfterFailure() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, h := range m.hubs {
		h.mu.Lock()
		n += h.gracefulAfterFailure
		h.mu.Unlock()
	}
	return n
}

// breakNewest breaks the newest generation's ring, as a stalled link does,
// without any member leaving; it returns the generation.
func (m *memRings) breakNewest() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var newest uint64
	for g := range m.hubs {
		newest = max(newest, g)
	}
	if h := m.hubs[newest]; h != nil {
		h.breakRing()
	}
	return newest
}
