package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// startLog is a Ring whose Start records the started ranges (as offsets
// into grads) and fails when err is set.
type startLog struct {
	Ring
	grads   []float32
	started [][2]int
	err     error
}

type doneWaiter struct{ err error }

func (w doneWaiter) Wait() error { return w.err }

func (s *startLog) Start(_ context.Context, buf []float32) Waiter {
	lo := len(s.grads) - cap(buf) // buf is a suffix-capped view of grads
	s.started = append(s.started, [2]int{lo, lo + len(buf)})
	return doneWaiter{s.err}
}

func TestBucketsStartInOrderWhenComplete(t *testing.T) {
	for _, tc := range []struct {
		n, size int
		ready   [][2]int
		// after[i] is how many buckets have started after ready[i].
		after []int
		want  [][2]int
	}{
		{n: 10, size: 4, ready: [][2]int{{8, 10}, {5, 8}, {2, 5}, {0, 2}}, after: []int{0, 1, 2, 3},
			want: [][2]int{{6, 10}, {2, 6}, {0, 2}}},
		{n: 10, size: 10, ready: [][2]int{{9, 10}, {0, 9}}, after: []int{0, 1}, want: [][2]int{{0, 10}}},
		{n: 10, size: 100, ready: [][2]int{{0, 10}}, after: []int{1}, want: [][2]int{{0, 10}}},
		{n: 8, size: 2, ready: [][2]int{{1, 8}, {0, 1}}, after: []int{3, 4}, want: [][2]int{{6, 8}, {4, 6}, {2, 4}, {0, 2}}},
	} {
		t.Run(fmt.Sprint(tc.n, "/", tc.size), func(t *testing.T) {
			grads := make([]float32, tc.n)
			ring := &startLog{grads: grads}
			b := newBuckets(context.Background(), ring, grads, tc.size)
			for i, r := range tc.ready {
				b.GradsReady(r[0], r[1])
				if len(ring.started) != tc.after[i] {
					t.Fatalf("after range %v: %d buckets started, want %d", r, len(ring.started), tc.after[i])
				}
			}
			if err := b.finish(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ring.started, tc.want) {
				t.Fatalf("started %v, want %v", ring.started, tc.want)
			}
		})
	}
}

// TestBucketsFinishStartsTheRest: ranges backward never reported are
// still summed, after the others, and a failed bucket is named.
func TestBucketsFinishStartsTheRest(t *testing.T) {
	grads := make([]float32, 10)
	ring := &startLog{grads: grads, err: errors.New("link down")}
	b := newBuckets(context.Background(), ring, grads, 4)
	b.GradsReady(6, 10)
	err := b.finish()
	if want := [][2]int{{6, 10}, {2, 6}, {0, 2}}; !reflect.DeepEqual(ring.started, want) {
		t.Fatalf("started %v, want %v", ring.started, want)
	}
	if err == nil || err.Error() != "gradient bucket 1 of 3 (values 6..10): link down" {
		t.Fatalf("error %v", err)
	}
}
