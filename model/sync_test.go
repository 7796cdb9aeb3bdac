package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// fakeRing is an in-process Reducer for a fixed number of replicas: each AllReduceSum call waits
// until every replica has contributed, then gives all of them the sum (in replica order).
type fakeRing struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	bufs    [][]float32
	arrived int
	round   int
	calls   int
}

func newFakeRing(n int) *fakeRing {
	r := &fakeRing{n: n, bufs: make([][]float32, n)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// replica is one replica's view of the ring.
type replica struct {
	ring *fakeRing
	rank int
}

func (p replica) AllReduceSum(ctx context.Context, buf []float32) error {
	r := p.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	round := r.round
	r.bufs[p.rank] = buf
	r.arrived++
	if r.arrived == r.n {
		sum := make([]float32, len(buf))
		for _, b := range r.bufs {
			for i, v := range b {
				sum[i] += v
			}
		}
		for _, b := range r.bufs {
			copy(b, sum)
		}
		r.arrived, r.calls = 0, r.calls+1
		r.round++
		r.cond.Broadcast()
		return ctx.Err()
	}
	for r.round == round {
		r.cond.Wait()
	}
	return ctx.Err()
}

// syncTol bounds replica-vs-whole differences: float32 statistics summed in another order,
// through up to 50 layers.
const syncTol = 3e-5

// TestSyncBNMatchesWholeBatch trains 2 replicas on half batches with a synchronising reducer and
// checks they compute what one process computes on the whole batch.
func TestSyncBNMatchesWholeBatch(t *testing.T) {
	// A ResNet-50 at its torchvision initialisation is chaotic at these sizes (PyTorch's own
	// float32 gradients are 7% off its float64 ones at 16 px): zero_init_residual makes every
	// block start as its shortcut, a conditioned start that still runs every Bottleneck and
	// downsampling branch with synchronised statistics.
	for _, cfg := range []Config{
		{Arch: ArchNIN3, Blocks: 3, Width: 16, InputSize: 8, Classes: 4},
		{Arch: ArchResNet18, Blocks: ResNetBlocks, Width: 512, InputSize: 8, Classes: 4, Stem: StemSmall},
		{Arch: ArchResNet34, Blocks: ResNetBlocks, Width: 512, InputSize: 8, Classes: 4, Stem: StemSmall},
		{Arch: ArchResNet50, Blocks: ResNetBlocks, Width: 2048, InputSize: 8, Classes: 4, Stem: StemSmall, ZeroInitResidual: true},
	} {
		t.Run(fmt.Sprint(cfg.Arch, "-", cfg.Stem, cfg.InputSize), func(t *testing.T) {
			if cfg.IsResNet() {
				skipResNetUnderRace(t)
			}
			testSyncBN(t, cfg)
		})
	}
}

// testSyncBN is TestSyncBNMatchesWholeBatch for one network.
func testSyncBN(t *testing.T, cfg Config) {
	whole, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 8
	img := 3 * cfg.InputSize * cfg.InputSize
	rng := rand.New(rand.NewPCG(1, 1))
	x := randSlice(rng, batch*img)
	labels := []int{0, 1, 2, 3, 3, 2, 1, 0}
	ctx := context.Background()
	reps := []*Net{whole.Clone(), whole.Clone()}
	wholeLoss, _, err := whole.TrainStep(ctx, x, labels, 1)
	if err != nil {
		t.Fatal(err)
	}
	ring := newFakeRing(2)
	losses, errs := make([]float64, 2), make([]error, 2)
	var wg sync.WaitGroup
	for r, n := range reps {
		n.SetReducer(replica{ring: ring, rank: r})
		wg.Go(func() {
			h := batch / 2
			losses[r], _, errs[r] = n.TrainStep(ctx, x[r*h*img:(r+1)*h*img], labels[r*h:(r+1)*h], 0.5)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sum := make([]float32, whole.NumParams())
	for _, n := range reps {
		for i, g := range n.Grads() {
			sum[i] += g
		}
	}
	if e := relErr(sum, whole.Grads()); e > syncTol {
		t.Errorf("summed replica gradients differ from the whole batch: %.3g", e)
	}
	for r, n := range reps {
		if e := relErr(n.State(), whole.State()); e > syncTol {
			t.Errorf("replica %d running statistics differ: %.3g", r, e)
		}
	}
	if d := (losses[0]+losses[1])/2 - wholeLoss; d > 1e-5 || d < -1e-5 {
		t.Errorf("mean replica loss %g, whole %g", (losses[0]+losses[1])/2, wholeLoss)
	}
	if ring.calls == 0 {
		t.Error("the reducer was never called")
	}
}

// TestDeterministicAcrossThreads trains the same seed with 1 and 2 threads and requires
// bit-identical parameters and state.
func TestDeterministicAcrossThreads(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: ArchNIN4, Blocks: 4, Width: 32, InputSize: 16, Classes: 4},
		{Arch: ArchResNet18, Blocks: ResNetBlocks, Width: 512, InputSize: 32, Classes: 4, Stem: StemImageNet},
		{Arch: ArchResNet50, Blocks: ResNetBlocks, Width: 2048, InputSize: 16, Classes: 4, Stem: StemSmall},
	} {
		t.Run(cfg.Arch+"-"+cfg.Stem, func(t *testing.T) {
			if cfg.IsResNet() {
				skipResNetUnderRace(t)
			}
			testThreads(t, cfg)
		})
	}
}

// testThreads is TestDeterministicAcrossThreads for one network.
func testThreads(t *testing.T, cfg Config) {
	defer SetThreads(SetThreads(1))
	run := func(threads int) *Net {
		SetThreads(threads)
		n, err := New(cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 2))
		x := randSlice(rng, 8*3*cfg.InputSize*cfg.InputSize)
		opt := NewSGD(DefaultSGDConfig())
		for range 3 {
			n.ZeroGrads()
			if _, _, err := n.TrainStep(context.Background(), x, []int{0, 1, 2, 3, 0, 1, 2, 3}, 1); err != nil {
				t.Fatal(err)
			}
			opt.Step(n.Params(), n.Grads(), 0.1)
		}
		return n
	}
	a, b := run(1), run(2)
	if !equalF32(a.Params(), b.Params()) || !equalF32(a.State(), b.State()) {
		t.Fatal("1 and 2 threads give different weights")
	}
}

// TestColCacheIsTransparent trains with and without the im2col cache and requires bit-identical
// weights (the cache only saves recomputation).
func TestColCacheIsTransparent(t *testing.T) {
	defer func(v int) { workspaceTarget = v }(workspaceTarget)
	run := func(target int) *Net {
		workspaceTarget = target
		n, _ := New(Config{Arch: ArchSmall, Blocks: 3, Width: 16, InputSize: 8, Classes: 4}, 4)
		x := randSlice(rand.New(rand.NewPCG(3, 3)), 4*3*8*8)
		opt := NewSGD(DefaultSGDConfig())
		for range 2 {
			n.ZeroGrads()
			if _, _, err := n.TrainStep(context.Background(), x, []int{0, 1, 2, 3}, 1); err != nil {
				t.Fatal(err)
			}
			opt.Step(n.Params(), n.Grads(), 0.1)
		}
		return n
	}
	if a, b := run(0), run(1<<30); !equalF32(a.Params(), b.Params()) {
		t.Fatal("the im2col cache changes the result")
	}
}

// TestSetIm2colCache: a cap shrinks the workspace of networks built after it (to the count
// without the cache at 0), a negative cap restores the default, and the previous cap is
// returned.
func TestSetIm2colCache(t *testing.T) {
	cfg := Config{Arch: ArchSmall, Blocks: 3, Width: 16, InputSize: 32, Classes: 4}
	measure := func() int64 {
		f, err := MeasureFootprint(cfg, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f.Workspace
	}
	full := measure()
	defer SetIm2colCache(SetIm2colCache(0))
	none := measure()
	if none >= full {
		t.Fatalf("workspace with no im2col cache %d, with the default %d: want less", none, full)
	}
	if prev := SetIm2colCache(-1); prev != 0 {
		t.Errorf("previous cap %d, want 0", prev)
	}
	if got := measure(); got != full {
		t.Errorf("workspace after removing the cap %d, want %d", got, full)
	}
	if prev := SetIm2colCache(1 << 20); prev != -1 {
		t.Errorf("previous cap %d, want -1 (none)", prev)
	}
	if got := measure(); got < none || got > full {
		t.Errorf("workspace with a 1 MiB cap %d, want within [%d, %d]", got, none, full)
	}
}
