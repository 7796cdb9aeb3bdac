package experiment

import (
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model/recipe"
)

// TestEstimateMemory: the training term is the supervised network's
// weights, gradients and Adam state plus the engine's workspace count at
// the evaluation batch (the larger one); the estimate grows with the
// supervised batch and the image side; a missing data folder is an error
// naming it.
func TestEstimateMemory(t *testing.T) {
	c, err := job.Preset(job.PresetQuick)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := EstimateMemory(c, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	n, err := recipe.Net(c, 5, 0) // the network itself, built
	if err != nil {
		t.Fatal(err)
	}
	want := int64(n.NumParams()+len(n.State()))*4 + int64(n.NumParams())*4*3 + n.WorkspaceBytes(evalBatch) + evalBatch*3*32*32*4
	if parts[2].Bytes != want || !strings.Contains(parts[2].What, "small at batch 128") {
		t.Errorf("training term %+v, want %d bytes for small at batch 128", parts[2], want)
	}
	if parts[1].Bytes != 3480*3*32*32 || parts[0].Bytes != 3480*itemBytes {
		t.Errorf("photos terms %+v, %+v, want 3480 photos of 32x32x3 bytes and their items", parts[0], parts[1])
	}
	small, err := EstimateMemory(c, 1<<20)
	if err != nil || small[1].Bytes != 1<<20 || TotalBytes(small) != TotalBytes(parts)-parts[1].Bytes+1<<20 {
		t.Errorf("a cache of 1 MiB: %+v (%v), want the photos term bounded by it", small, err)
	}
	base := TotalBytes(parts)
	for _, grow := range []func(*job.Config){
		func(c *job.Config) { c.Supervised.Batch = 512 },
		func(c *job.Config) { c.Data.ImageSize = 48 },
	} {
		g := c
		grow(&g)
		p, err := EstimateMemory(g, 1<<40)
		if err != nil || TotalBytes(p) <= base {
			t.Errorf("a larger job is estimated at %d (%v), not above %d", TotalBytes(p), err, base)
		}
	}
	c.Data.Dir = t.TempDir() + "/nowhere"
	if _, err := EstimateMemory(c, 1<<40); err == nil || !strings.Contains(err.Error(), c.Data.Dir) {
		t.Errorf("missing data folder: %v, want it named", err)
	}
}
