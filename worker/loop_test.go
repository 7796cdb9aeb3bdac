package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

const (
	testImages = 30
	testBatch  = 8 // 30 images: steps of 8, 8, 14 (remainder merged)
	testEpochs = 3
)

// quadJob runs the fake job with the given workers started at once and
// returns the in-process cluster after the job finished (workers still
// running) and the coordinator.
func quadJob(t *testing.T, ids []string, delay time.Duration, during func(*inProcess, *fakeCoord)) (*inProcess, *fakeCoord) {
	t.Helper()
	coord := newFakeCoord(testImages, testBatch, testEpochs, 2)
	coord.minStart = len(ids)
	p := newInProcess(t, coord, newMemRings(), func() ReplicaFactory { return &quadFactory{delay: delay} })
	for _, id := range ids {
		p.start(id)
	}
	if during != nil {
		during(p, coord)
	}
	waitFor(t, 30*time.Second, "job finished", coord.finished)
	if err := coord.consumedExactlyOnce(); err != nil {
		t.Error(err)
	}
	return p, coord
}

// reference is the single-worker result of the fake job.
func reference(t *testing.T) Replica {
	t.Helper()
	p, _ := quadJob(t, []string{"ref"}, 0, nil)
	return p.replicas(testEpochs)["ref"]
}

func TestEquivalentForAnyWorkerCount(t *testing.T) {
	want := reference(t)
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("workers=%d", n), func(t *testing.T) {
			var ids []string
			for i := range n {
				ids = append(ids, fmt.Sprintf("w%d", i))
			}
			p, _ := quadJob(t, ids, 0, nil)
			got := p.replicas(testEpochs)
			if len(got) != n {
				t.Fatalf("%d replicas, want %d", len(got), n)
			}
			sameReplicas(t, want, got, 1e-5)
		})
	}
}

// TestCrashedWorkerSurvivorsContinue kills a worker mid-step without a
// graceful leave: its lease expires, the survivors abort the step, form the
// next generation and finish with the weights of an uninterrupted run.
func TestCrashedWorkerSurvivorsContinue(t *testing.T) {
	want := reference(t)
	var recovery time.Duration
	p, _ := quadJob(t, []string{"a", "b", "c"}, 15*time.Millisecond, func(p *inProcess, c *fakeCoord) {
		waitFor(t, 10*time.Second, "a few steps", func() bool { return p.running["a"].factory.replica() != nil && stepsDone(c) >= 3 })
		before := stepsDone(c)
		p.stop("b", true)
		killed := time.Now()
		waitFor(t, 10*time.Second, "training resumed", func() bool { return stepsDone(c) > before+1 && members(c) == 2 })
		recovery = time.Since(killed)
	})
	t.Logf("crash: training resumed %v after the kill (lease 600ms)", recovery)
	if recovery > 5*time.Second {
		t.Errorf("recovery took %v, want under 5s", recovery)
	}
	sameReplicas(t, want, p.replicas(testEpochs), 1e-5)
}

// TestGracefulLeaveAndRejoin stops a worker gracefully (it leaves, so
// nobody waits for its lease), then restarts it with the same id: it rejoins
// in a later generation with the survivors' weights.
func TestGracefulLeaveAndRejoin(t *testing.T) {
	want := reference(t)
	p, coord := quadJob(t, []string{"a", "b"}, 10*time.Millisecond, func(p *inProcess, c *fakeCoord) {
		waitFor(t, 10*time.Second, "a few steps", func() bool { return stepsDone(c) >= 2 })
		before := stepsDone(c)
		start := time.Now()
		p.stop("b", false)
		waitFor(t, 10*time.Second, "resumed after leave", func() bool { return stepsDone(c) > before+1 })
		t.Logf("graceful leave: training resumed after %v", time.Since(start))
		p.start("b")
		waitFor(t, 10*time.Second, "rejoined", func() bool { return members(c) == 2 })
	})
	if coord.leaves != 1 {
		t.Errorf("%d graceful leaves, want 1", coord.leaves)
	}
	sameReplicas(t, want, p.replicas(testEpochs), 1e-5)
}

// TestResumeAfterAllWorkersDie kills every worker; new workers resume from
// the latest checkpoint and redo only the steps after it.
func TestResumeAfterAllWorkersDie(t *testing.T) {
	want := reference(t)
	p, _ := quadJob(t, []string{"a", "b"}, 10*time.Millisecond, func(p *inProcess, c *fakeCoord) {
		waitFor(t, 10*time.Second, "a checkpoint", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.latest != "" && c.epoch >= 1
		})
		p.stop("a", true)
		p.stop("b", true)
		waitFor(t, 5*time.Second, "leases expired", func() bool { return members(c) == 0 })
		p.start("c")
		p.start("d")
	})
	sameReplicas(t, want, p.replicas(testEpochs), 1e-5)
}

// TestJoinerAbortsAndSharesWeights adds a worker mid-run: the generation
// change aborts the in-flight step and the joiner starts from the others'
// weights.
func TestJoinerAbortsAndSharesWeights(t *testing.T) {
	want := reference(t)
	p, _ := quadJob(t, []string{"a"}, 10*time.Millisecond, func(p *inProcess, c *fakeCoord) {
		waitFor(t, 10*time.Second, "a few steps", func() bool { return stepsDone(c) >= 2 })
		p.start("b")
		p.start("c")
	})
	if got := p.replicas(testEpochs); len(got) != 3 {
		t.Fatalf("%d replicas, want 3", len(got))
	}
	sameReplicas(t, want, p.replicas(testEpochs), 1e-5)
}

// TestBrokenRingWithoutDeathForcesNewGeneration breaks the ring while every
// worker keeps its lease: the coordinator sees no failure, so the workers
// leave and register again to get a new generation, and finish with the
// reference weights.
func TestBrokenRingWithoutDeathForcesNewGeneration(t *testing.T) {
	want := reference(t)
	rings := newMemRings()
	coord := newFakeCoord(testImages, testBatch, testEpochs, 2)
	coord.minStart = 2
	p := newInProcess(t, coord, rings, func() ReplicaFactory { return &quadFactory{delay: 10 * time.Millisecond} })
	p.start("a")
	p.start("b")
	waitFor(t, 10*time.Second, "a few steps", func() bool { return stepsDone(coord) >= 2 })
	broken := rings.breakNewest()
	took := waitFor(t, 15*time.Second, "a new generation", func() bool {
		coord.mu.Lock()
		defer coord.mu.Unlock()
		return coord.gen > broken
	})
	t.Logf("stalled ring: new generation %v after the break (stuck limit 3 leases = 1.8s)", took)
	waitFor(t, 30*time.Second, "job finished", coord.finished)
	if err := coord.consumedExactlyOnce(); err != nil {
		t.Error(err)
	}
	if coord.leaves == 0 {
		t.Error("no worker left to force a new generation")
	}
	if n := rings.gracefulAfterFailure(); n > 0 {
		t.Errorf("%d worker(s) closed a failed generation's ring gracefully instead of aborting it", n)
	}
	sameReplicas(t, want, p.replicas(testEpochs), 1e-5)
}

// stepsDone counts completed steps over all epochs.
func stepsDone(c *fakeCoord) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, d := range c.done {
		if d {
			n++
		}
	}
	return c.epoch*100 + n
}

func members(c *fakeCoord) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire()
	return len(c.members)
}

// replacingCoord is a fakeCoord that, once replace(id) was called, answers
// worker id's calls as a coordinator does after another process registered
// the same id: client.ErrReplaced.
type replacingCoord struct {
	*fakeCoord
	mu       sync.Mutex
	replaced map[string]bool
	leaves   map[string]int // leaves by id after it was replaced
}

func (c *replacingCoord) replace(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaced[id] = true
}

func (c *replacingCoord) check(op, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.replaced[id] {
		if op == "leave" {
			c.leaves[id]++
		}
		return fmt.Errorf("%s of worker %q: another process registered this id since, from ring address mem://other: %w", op, id, client.ErrReplaced)
	}
	return nil
}

func (c *replacingCoord) Heartbeat(ctx context.Context, hb HeartbeatInfo) (uint64, error) {
	if err := c.check("heartbeat", hb.WorkerID); err != nil {
		return 0, err
	}
	return c.fakeCoord.Heartbeat(ctx, hb)
}

func (c *replacingCoord) GetAssignment(ctx context.Context, id string, known Known) (Assignment, error) {
	if err := c.check("get assignment", id); err != nil {
		return Assignment{}, err
	}
	return c.fakeCoord.GetAssignment(ctx, id, known)
}

func (c *replacingCoord) Leave(ctx context.Context, id string) error {
	if err := c.check("leave", id); err != nil {
		return err
	}
	return c.fakeCoord.Leave(ctx, id)
}

// TestReplacedWorkerStops: when the coordinator answers that another
// process registered this worker's id, the worker stops within about a
// heartbeat with an error wrapping client.ErrReplaced, and does not try to
// leave (the id is the other process's now).
func TestReplacedWorkerStops(t *testing.T) {
	fc := newFakeCoord(testImages, testBatch, testEpochs, 2)
	fc.minStart = 2
	coord := &replacingCoord{fakeCoord: fc, replaced: map[string]bool{}, leaves: map[string]int{}}
	p := newInProcess(t, coord, newMemRings(), func() ReplicaFactory { return &quadFactory{delay: 10 * time.Millisecond} })
	a := p.start("a")
	p.start("b")
	waitFor(t, 10*time.Second, "a few steps", func() bool { return stepsDone(fc) >= 2 })
	coord.replace("a")
	start := time.Now()
	select {
	case err := <-a.done:
		t.Logf("replaced worker stopped %v after the coordinator replaced it: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, client.ErrReplaced) || !strings.Contains(err.Error(), "mem://other") {
			t.Errorf("replaced worker returned %v, want ErrReplaced naming the other process", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced worker still runs 5 s after the coordinator replaced it")
	}
	p.mu.Lock()
	delete(p.running, "a")
	p.mu.Unlock()
	coord.mu.Lock()
	defer coord.mu.Unlock()
	if coord.leaves["a"] > 0 {
		t.Errorf("the replaced worker tried to leave %d time(s)", coord.leaves["a"])
	}
}
