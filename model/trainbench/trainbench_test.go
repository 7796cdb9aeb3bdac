package trainbench

import (
	"context"
	"math"
	"strings"
	"testing"
)

// TestRun times a tiny network and refuses a batch that is not whole
// images x 4 rotations.
func TestRun(t *testing.T) {
	r, err := Run(context.Background(), Options{Arch: "resnet18-small", Size: 8, Batch: 8, Threads: 1, Seconds: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps < 5 || r.SamplesPerSecond <= 0 || r.AchievedGFLOPS <= 0 || math.IsNaN(r.Loss) || r.Model != "resnet18-small" {
		t.Errorf("result %+v", r)
	}
	if _, err := Run(context.Background(), Options{Arch: "small", Size: 8, Batch: 6, Threads: 1}); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
		t.Errorf("batch 6: %v, want a refusal", err)
	}
}

// TestRotationBatch checks the batch holds each image in its 4 rotations,
// grouped by rotation, labelled by it.
func TestRotationBatch(t *testing.T) {
	x, labels := rotationBatch(8, 4)
	img := 3 * 4 * 4
	if len(x) != 8*img || len(labels) != 8 {
		t.Fatalf("%d values, %d labels", len(x), len(labels))
	}
	for k, l := range labels {
		if l != k/2 {
			t.Errorf("label %d = %d, want %d", k, l, k/2)
		}
	}
	// Rotation 2 of image 0 is rotation 0 of it turned twice: its first
	// channel's first pixel is the last pixel of the unrotated one's.
	if x[4*img] != x[img/3-1] {
		t.Errorf("rotation 2's first pixel %v, want the unrotated image's last %v", x[4*img], x[img/3-1])
	}
}
