package shard

import (
	"fmt"
	"slices"
	"testing"
)

// checkShards verifies exactly-once coverage of want and the size bound.
func checkShards(t *testing.T, shards map[string][]int, want []int, workers []string, batch int) {
	t.Helper()
	seen := map[int]int{}
	lo, hi := -1, 0
	for _, w := range workers {
		sh := shards[w]
		for _, img := range sh {
			seen[img]++
		}
		if lo < 0 || len(sh) < lo {
			lo = len(sh)
		}
		hi = max(hi, len(sh))
	}
	if len(shards) != len(workers) {
		t.Fatalf("%d shards for %d workers", len(shards), len(workers))
	}
	for _, img := range want {
		if seen[img] != 1 {
			t.Fatalf("image %d assigned %d times", img, seen[img])
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d distinct images assigned, want %d", len(seen), len(want))
	}
	if hi-lo > max(batch, 1) {
		t.Fatalf("shard sizes %d..%d differ by more than a batch of %d", lo, hi, batch)
	}
}

func workerNames(n int) []string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = fmt.Sprintf("w%d", i)
	}
	return ws
}

// exactlyOnce runs Assign, consumes some steps, Reassigns the rest to a
// new worker list, consumes more, Reassigns again to the first list, and
// checks the epoch sees every image exactly once.
func exactlyOnce(t *testing.T, n, nw, nw2, batch, steps int, seed int64, epoch int) {
	images := make([]int, n)
	for i := range images {
		images[i] = 3*i + 1
	}
	lists := [][]string{workerNames(nw), workerNames(nw2 + 5)[5:], workerNames(nw)} // new names: the old workers are gone
	consumed := map[int]bool{}
	remaining := images
	for round, ws := range lists {
		var shards map[string][]int
		if round == 0 {
			shards = Assign(epoch, seed, remaining, ws, batch)
		} else {
			shards = Reassign(epoch, seed, remaining, ws, batch)
		}
		checkShards(t, shards, remaining, ws, batch)
		for _, w := range ws {
			for _, img := range shards[w][:min(steps*max(batch, 1), len(shards[w]))] {
				if consumed[img] {
					t.Fatalf("round %d: image %d consumed twice", round, img)
				}
				consumed[img] = true
			}
		}
		remaining = nil
		for _, img := range images {
			if !consumed[img] {
				remaining = append(remaining, img)
			}
		}
	}
}

func TestAssignExactlyOnce(t *testing.T) {
	for _, tc := range []struct{ n, nw, nw2, batch, steps int }{
		{0, 1, 1, 4, 0}, {1, 3, 2, 4, 0}, {100, 4, 3, 8, 2}, {3480, 2, 4, 64, 10}, {17, 5, 1, 0, 1}, {50, 7, 7, 3, 100},
	} {
		exactlyOnce(t, tc.n, tc.nw, tc.nw2, tc.batch, tc.steps, 42, 3)
	}
}

func FuzzAssignExactlyOnce(f *testing.F) {
	f.Add(uint16(100), uint8(4), uint8(3), uint8(8), uint8(2), int64(1), uint8(0))
	f.Add(uint16(7), uint8(9), uint8(1), uint8(0), uint8(0), int64(-5), uint8(200))
	f.Fuzz(func(t *testing.T, n uint16, nw, nw2, batch, steps uint8, seed int64, epoch uint8) {
		exactlyOnce(t, int(n%5000), int(nw%16)+1, int(nw2%16)+1, int(batch), int(steps), seed, int(epoch))
	})
}

// TestAssignGlobalStepsIndependentOfWorkers checks step s covers the same
// images for 1, 2 and 4 workers at the same global batch, and that the
// order depends on epoch and seed but not on the input order.
func TestAssignGlobalStepsIndependentOfWorkers(t *testing.T) {
	images := make([]int, 203)
	for i := range images {
		images[i] = i
	}
	const global = 16
	step := func(nw, s int) []int {
		sh := Assign(2, 9, images, workerNames(nw), global/nw)
		var out []int
		for _, w := range workerNames(nw) {
			b := global / nw
			out = append(out, sh[w][min(s*b, len(sh[w])):min((s+1)*b, len(sh[w]))]...)
		}
		slices.Sort(out)
		return out
	}
	for s := range 13 {
		if a, b, c := step(1, s), step(2, s), step(4, s); !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Fatalf("step %d differs: %v %v %v", s, a, b, c)
		}
	}
	rev := slices.Clone(images)
	slices.Reverse(rev)
	a := Assign(2, 9, images, []string{"x"}, 4)["x"]
	if !slices.Equal(a, Assign(2, 9, rev, []string{"x"}, 4)["x"]) {
		t.Error("order depends on the input order")
	}
	if slices.Equal(a, Assign(3, 9, images, []string{"x"}, 4)["x"]) || slices.Equal(a, Assign(2, 10, images, []string{"x"}, 4)["x"]) {
		t.Error("epoch or seed does not change the order")
	}
	if got := Assign(0, 0, images, nil, 4); len(got) != 0 {
		t.Errorf("no workers: %v", got)
	}
}
