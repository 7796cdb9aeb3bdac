package coordinator

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// timingWindow is how many recent steps per worker the straggler check uses.
const timingWindow = 16

// minTimings is how many steps a worker must have reported before it can be
// named a straggler.
const minTimings = 4

// leaseTable is the leader's soft state about workers: last heartbeats
// (leases) and recent step timings. It is not replicated: a new leader
// grants every known worker a fresh lease (see DESIGN.md).
type leaseTable struct {
	mu      sync.Mutex
	last    map[string]time.Time
	timings map[string]*rankTimings
}

// rankTimings are a worker's recent compute and all-reduce wait times.
type rankTimings struct {
	rank    int
	compute []time.Duration
	wait    []time.Duration
}

func newLeaseTable() *leaseTable {
	return &leaseTable{last: map[string]time.Time{}, timings: map[string]*rankTimings{}}
}

// reset grants ids a fresh lease and forgets everything else.
func (t *leaseTable) reset(ids []string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = map[string]time.Time{}
	t.timings = map[string]*rankTimings{}
	for _, id := range ids {
		t.last[id] = now
	}
}

// renew records a heartbeat.
func (t *leaseTable) renew(id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last[id] = now
}

// lastSeen returns the last heartbeat of id.
func (t *leaseTable) lastSeen(id string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.last[id]
	return at, ok
}

// forget drops a worker.
func (t *leaseTable) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, id)
	delete(t.timings, id)
}

// expired returns the members whose lease ran out; members without an
// entry (registered through an earlier leader) get a fresh lease now.
func (t *leaseTable) expired(members []string, lease time.Duration, now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, id := range members {
		at, ok := t.last[id]
		if !ok {
			t.last[id] = now
			continue
		}
		if now.Sub(at) > lease {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// record adds one step's timings of a worker (compute = step - wait).
func (t *leaseTable) record(id string, rank int, step, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.timings[id]
	if r == nil || r.rank != rank {
		r = &rankTimings{rank: rank}
		t.timings[id] = r
	}
	push := func(s []time.Duration, d time.Duration) []time.Duration {
		s = append(s, d)
		if len(s) > timingWindow {
			s = s[len(s)-timingWindow:]
		}
		return s
	}
	r.compute = push(r.compute, max(step-wait, 0))
	r.wait = push(r.wait, wait)
}

// Timing is a worker's median recent compute time and all-reduce wait.
type Timing struct {
	Rank      int
	Compute   time.Duration
	Wait      time.Duration
	Steps     int
	Straggler bool
}

// timingsOf returns the timings of every worker that reported, marking
// stragglers: workers with enough steps whose median compute time exceeds
// the median over workers by factor.
func (t *leaseTable) timingsOf(factor float64) map[string]Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]Timing{}
	var medians []time.Duration
	for id, r := range t.timings {
		tm := Timing{Rank: r.rank, Compute: median(r.compute), Wait: median(r.wait), Steps: len(r.compute)}
		out[id] = tm
		if tm.Steps >= minTimings {
			medians = append(medians, tm.Compute)
		}
	}
	if len(medians) < 2 {
		return out
	}
	mid := median(medians)
	for id, tm := range out {
		if tm.Steps >= minTimings && float64(tm.Compute) > factor*float64(mid) {
			tm.Straggler = true
			out[id] = tm
		}
	}
	return out
}

// median of durations (0 for none); the lower middle for even counts.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// leaseLoop removes workers whose lease expired, checking ten times per
// lease, until ctx is done (leadership lost).
func (n *Node) leaseLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Lease / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var members []string
		n.fsm.View(func(s *State) {
			for id := range s.Workers {
				members = append(members, id)
			}
		})
		dead := n.leases.expired(members, n.cfg.Lease, time.Now())
		if len(dead) == 0 {
			continue
		}
		n.log.Warn("worker leases expired", "workers", dead)
		if _, err := n.propose(ctx, &RemoveWorkers{IDs: dead, Reason: "lease expired", Time: time.Now()}); err != nil {
			n.log.Warn("remove expired workers", "workers", dead, "err", err)
			continue
		}
		for _, id := range dead {
			n.leases.forget(id)
		}
	}
}
