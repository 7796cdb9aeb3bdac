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
	parts, err := EstimateMemory(c)
	if err != nil {
		t.Fatal(err)
	}
	n, err := recipe.Net(c, 5, 0) // the network itself, built
	if err != nil {
		t.Fatal(err)
	}
	want := int64(n.NumParams()+len(n.State()))*4 + int64(n.NumParams())*4*3 + n.WorkspaceBytes(evalBatch) + evalBatch*3*32*32*4
	if parts[1].Bytes != want || !strings.Contains(parts[1].What, "small at batch 128") {
		t.Errorf("training term %+v, want %d bytes for small at batch 128", parts[1], want)
	}
	if parts[0].Bytes != 3480*3*32*32 {
		t.Errorf("photos term %+v, want 3480 photos of 32x32x3 bytes", parts[0])
	}
	base := TotalBytes(parts)
	for _, grow := range []func(*job.Config){
		func(c *job.Config) { c.Supervised.Batch = 512 },
		func(c *job.Config) { c.Data.ImageSize = 48 },
	} {
		g := c
		grow(&g)
		p, err := EstimateMemory(g)
		if err != nil || TotalBytes(p) <= base {
			t.Errorf("a larger job is estimated at %d (%v), not above %d", TotalBytes(p), err, base)
		}
	}
	c.Data.Dir = t.TempDir() + "/nowhere"
	if _, err := EstimateMemory(c); err == nil || !strings.Contains(err.Error(), c.Data.Dir) {
		t.Errorf("missing data folder: %v, want it named", err)
	}
}
