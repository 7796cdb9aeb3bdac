package coordinator

import (
	"slices"
	"testing"
)

func TestNumSteps(t *testing.T) {
	for _, tc := range []struct{ n, batch, want int }{
		{0, 8, 0}, {5, 8, 1}, {8, 8, 1}, {16, 8, 2},
		{19, 8, 2}, // remainder 3 < 4: merged into the last batch
		{20, 8, 3}, // remainder 4 >= 4: a step of its own
		{100, 32, 3}, {3000, 32, 94},
	} {
		if got := NumSteps(tc.n, tc.batch); got != tc.want {
			t.Errorf("NumSteps(%d, %d) = %d, want %d", tc.n, tc.batch, got, tc.want)
		}
	}
}

// TestPlanCoversEveryImageOnce cuts epochs into steps and ranks for several
// world sizes and checks every image appears exactly once and part sizes
// differ by at most one.
func TestPlanCoversEveryImageOnce(t *testing.T) {
	ids := make([]int, 103)
	for i := range ids {
		ids[i] = 1000 + i
	}
	for _, world := range []int{1, 2, 3, 5} {
		order := EpochOrder(ids, 7, 2)
		seen := map[int]int{}
		for step := range NumSteps(len(order), 10) {
			batch := StepBatch(order, 10, step)
			lo, hi := len(batch), 0
			for r := range world {
				part := SplitRank(batch, r, world)
				lo, hi = min(lo, len(part)), max(hi, len(part))
				for _, id := range part {
					seen[id]++
				}
			}
			if hi-lo > 1 {
				t.Errorf("world %d step %d: part sizes %d..%d", world, step, lo, hi)
			}
		}
		if len(seen) != len(ids) {
			t.Fatalf("world %d: %d distinct images, want %d", world, len(seen), len(ids))
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("world %d: image %d seen %d times", world, id, k)
			}
		}
	}
}

func TestEpochOrderDeterministic(t *testing.T) {
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	a, b := EpochOrder(ids, 3, 1), EpochOrder(ids, 3, 1)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed and epoch give %v and %v", a, b)
	}
	if slices.Equal(a, EpochOrder(ids, 3, 2)) {
		t.Errorf("epochs 1 and 2 have the same order %v", a)
	}
	if !slices.Equal(ids, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("EpochOrder modified its input: %v", ids)
	}
}
