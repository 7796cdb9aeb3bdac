package job

import (
	"slices"
	"testing"
)

func TestNumSteps(t *testing.T) {
	for _, tc := range []struct{ n, batch, want int }{
		{0, 8, 0}, {5, 8, 1}, {8, 8, 1}, {16, 8, 2},
		{19, 8, 2}, // remainder 3 < 4: merged into the last batch
		{20, 8, 3}, // remainder 4 >= 4: a step of its own
		{100, 32, 3}, {3000, 32, 94}, {10, 0, 0},
	} {
		if got := NumSteps(tc.n, tc.batch); got != tc.want {
			t.Errorf("NumSteps(%d, %d) = %d, want %d", tc.n, tc.batch, got, tc.want)
		}
	}
}

// coverage runs an epoch of n images with global batch batch where the ring
// changes before some steps (worlds[s % len(worlds)] ranks run step s, the
// coordinator re-planning the rest of the epoch for the new world), and
// checks the epoch sees every image exactly once, each step's parts are
// disjoint and balanced (sizes differ by at most one), and the union of a
// step's parts is its global batch whatever the world.
func coverage(t *testing.T, n, batch int, worlds []int, seed uint64, epoch int) {
	t.Helper()
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 3*i + 1
	}
	plan := PlanEpoch(ids, seed, epoch, batch)
	seen := map[int]int{}
	for s := range plan.Steps() {
		world := worlds[s%len(worlds)]
		var union []int
		lo, hi := n, 0
		for r := range world {
			part := plan.Part(s, r, world)
			lo, hi = min(lo, len(part)), max(hi, len(part))
			union = append(union, part...)
		}
		if hi-lo > 1 {
			t.Fatalf("step %d on %d ranks: part sizes %d..%d", s, world, lo, hi)
		}
		if !slices.Equal(union, plan.Batch(s)) {
			t.Fatalf("step %d on %d ranks: parts %v are not the global batch %v", s, world, union, plan.Batch(s))
		}
		for _, id := range union {
			seen[id]++
		}
	}
	if len(seen) != n {
		t.Fatalf("n=%d batch=%d worlds=%v: %d distinct images, want %d", n, batch, worlds, len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("n=%d batch=%d worlds=%v: image %d seen %d times", n, batch, worlds, id, k)
		}
	}
}

func TestPlanCoversEveryImageOnce(t *testing.T) {
	for _, tc := range []struct {
		n, batch int
		worlds   []int
	}{
		{1, 4, []int{3}}, {103, 10, []int{1}}, {103, 10, []int{2, 3, 5}}, {3449, 32, []int{4, 1, 2}},
		{50, 3, []int{7}}, {19, 8, []int{2, 1}}, {20, 8, []int{5, 5, 1}},
	} {
		coverage(t, tc.n, tc.batch, tc.worlds, 42, 3)
	}
}

// FuzzPlanExactlyOnce checks coverage for arbitrary sizes, seeds and
// membership histories.
func FuzzPlanExactlyOnce(f *testing.F) {
	f.Add(uint16(100), uint8(8), []byte{4, 3}, uint64(1), uint8(0))
	f.Add(uint16(7), uint8(1), []byte{9, 1, 200}, uint64(5), uint8(200))
	f.Fuzz(func(t *testing.T, n uint16, batch uint8, worlds []byte, seed uint64, epoch uint8) {
		if len(worlds) == 0 || n == 0 {
			return
		}
		ws := make([]int, len(worlds))
		for i, w := range worlds {
			ws[i] = int(w%16) + 1
		}
		coverage(t, int(n%5000)+1, int(batch)+1, ws, seed, int(epoch))
	})
}

func TestEpochOrderDeterministic(t *testing.T) {
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	a, b := EpochOrder(ids, 3, 1), EpochOrder(ids, 3, 1)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed and epoch give %v and %v", a, b)
	}
	if slices.Equal(a, EpochOrder(ids, 3, 2)) || slices.Equal(a, EpochOrder(ids, 4, 1)) {
		t.Errorf("another epoch or seed gives the same order %v", a)
	}
	if !slices.Equal(ids, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("EpochOrder modified its input: %v", ids)
	}
}

func TestEpochBatchOutOfRange(t *testing.T) {
	p := PlanEpoch([]int{1, 2, 3}, 1, 0, 2)
	if p.Batch(-1) != nil || p.Batch(p.Steps()) != nil || p.Part(0, 2, 2) != nil {
		t.Error("out-of-range step or rank gives images")
	}
}
