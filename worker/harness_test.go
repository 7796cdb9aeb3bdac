package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLogger logs to stderr when WHORL_TEST_LOG is set, else nowhere.
func testLogger(id string) *slog.Logger {
	if os.Getenv("WHORL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("worker", id)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// recordingFactory remembers the last replica it built.
type recordingFactory struct {
	ReplicaFactory
	mu   sync.Mutex
	last Replica
}

func (f *recordingFactory) NewReplica(ctx context.Context, a Assignment) (Replica, error) {
	r, err := f.ReplicaFactory.NewReplica(ctx, a)
	f.mu.Lock()
	f.last = r
	f.mu.Unlock()
	return r, err
}

func (f *recordingFactory) replica() Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// inProcess runs workers in goroutines against one Coordinator and one
// RingFactory.
type inProcess struct {
	t       *testing.T
	coord   Coordinator
	rings   RingFactory
	factory func() ReplicaFactory
	mu      sync.Mutex
	running map[string]*runningWorker
}

type runningWorker struct {
	cancel  context.CancelFunc
	done    chan error
	factory *recordingFactory
	parts   *parts
	w       *Worker
}

func newInProcess(t *testing.T, c Coordinator, r RingFactory, f func() ReplicaFactory) *inProcess {
	p := &inProcess{t: t, coord: c, rings: r, factory: f, running: map[string]*runningWorker{}}
	t.Cleanup(p.stopAll)
	return p
}

// start runs worker id.
func (p *inProcess) start(id string) *runningWorker {
	cfg := DefaultConfig()
	cfg.ID, cfg.Heartbeat, cfg.LeaveTimeout = id, 100*time.Millisecond, time.Second
	w := &Worker{cfg: cfg, log: testLogger(id), met: newMetrics(id)}
	rf := &recordingFactory{ReplicaFactory: p.factory()}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{cancel: cancel, done: make(chan error, 1), factory: rf, w: w,
		parts: &parts{coord: p.coord, rings: p.rings, replicas: rf, ringAddr: "mem://" + id, crash: &atomic.Bool{}}}
	go func() { rw.done <- w.train(ctx, *rw.parts) }()
	p.mu.Lock()
	p.running[id] = rw
	p.mu.Unlock()
	return rw
}

// stop ends worker id: gracefully (leave) or as a crash (no leave, its
// lease expires).
func (p *inProcess) stop(id string, crash bool) {
	p.mu.Lock()
	rw := p.running[id]
	delete(p.running, id)
	p.mu.Unlock()
	if rw == nil {
		return
	}
	rw.parts.crash.Store(crash)
	rw.cancel()
	select {
	case err := <-rw.done:
		if err != nil {
			p.t.Errorf("worker %s: %v", id, err)
		}
	case <-time.After(10 * time.Second):
		p.t.Errorf("worker %s did not stop within 10s", id)
	}
}

func (p *inProcess) stopAll() {
	p.mu.Lock()
	var ids []string
	for id := range p.running {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.stop(id, false)
	}
}

// replicas returns the replicas of the running workers once every one has
// applied the job's last step (the first report of a step completes it on
// the coordinator, the other ranks apply it a moment later).
func (p *inProcess) replicas(epochs int) map[string]Replica {
	p.t.Helper()
	waitFor(p.t, 10*time.Second, "every worker past the last step", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, rw := range p.running {
			if rw.w.position().Epoch < epochs {
				return false
			}
		}
		return true
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Replica{}
	for id, rw := range p.running {
		out[id] = rw.factory.replica()
	}
	return out
}

// waitFor polls cond every 10ms up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// maxDiff is the largest absolute difference of two buffers.
func maxDiff(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("lengths %d and %d differ", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d, nil
}

// sameReplicas checks that replicas are within tol of want in params,
// state and optimizer state.
func sameReplicas(t *testing.T, want Replica, got map[string]Replica, tol float64) {
	t.Helper()
	for id, r := range got {
		for name, pair := range map[string][2][]float32{
			"params": {want.Params(), r.Params()}, "state": {want.State(), r.State()},
			"optimizer state": {want.OptState(), r.OptState()},
		} {
			d, err := maxDiff(pair[0], pair[1])
			t.Logf("worker %s %s: max difference %g (max |value| %g)", id, name, d, maxAbs(pair[0]))
			if err != nil || d > tol {
				t.Errorf("worker %s %s differ from the reference by %g (tolerance %g) %v", id, name, d, tol, err)
			}
		}
	}
}

// maxAbs is the largest absolute value of a buffer.
func maxAbs(a []float32) float64 {
	m := 0.0
	for _, v := range a {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}
