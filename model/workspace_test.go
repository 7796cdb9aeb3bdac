package model

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestWorkspaceBytesIsTheAllocation: WorkspaceBytes counts what the first
// Forward allocates (activations, gradients, scratch, im2col caches, the
// reordered weights), for sequential nets with and without caches and for
// ResNets, within 2% (an upper bound) and the allocator's rounding.
func TestWorkspaceBytesIsTheAllocation(t *testing.T) {
	for _, c := range []struct {
		name        string
		cfg         Config
		size, batch int
	}{
		{"small-32-b64", DefaultConfig(ArchSmall), 32, 64},
		{"small-48-b32", DefaultConfig(ArchSmall), 48, 32},
		{"nin4-32-b128", DefaultConfig(ArchNIN4), 32, 128}, // its 5x5x96 cache left out (the target)
		{"resnet18-64-b16", DefaultConfig(ArchResNet18), 64, 16},
		{"resnet18-small-32-b8", benchCaseOf("resnet18-small-32").cfg, 32, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.InputSize = c.size
			n, err := New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := n.WorkspaceBytes(c.batch)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n.ensure(c.batch)           // what the first Forward allocates for the net (GEMM's
			for _, u := range n.units { // per-thread packing buffers are the process's)
				u.conv.ensureReorder()
			}
			runtime.ReadMemStats(&after)
			got := int64(after.TotalAlloc - before.TotalAlloc)
			// The layer count is the cache budget's upper bound (it counts the
			// BatchNorm partial sums a block may need): at most 2% over.
			if got < want-want/50 || got > want+256<<10 {
				t.Errorf("the workspace allocated %d bytes, WorkspaceBytes says %d", got, want)
			}
			if n.WorkspaceBytes(2*c.batch) <= want {
				t.Errorf("WorkspaceBytes does not grow with the batch")
			}
		})
	}
}

// TestMeasureFootprintIsTheNet: the footprint counted without building
// the network is the built network's (parameters, state, workspace,
// features), and a bad configuration is refused naming the field.
func TestMeasureFootprintIsTheNet(t *testing.T) {
	for _, arch := range []string{ArchSmall, ArchNIN3, ArchResNet18} {
		cfg := DefaultConfig(arch)
		cfg.InputSize = 32
		n, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := MeasureFootprint(cfg, 64)
		if err != nil {
			t.Fatal(err)
		}
		if f.Params != n.NumParams() || f.State != len(n.State()) || f.Workspace != n.WorkspaceBytes(64) ||
			fmt.Sprint(f.FeatureDims) != fmt.Sprint(n.FeatureDims()) {
			t.Errorf("%s: footprint %+v, the net has %d params, %d state, workspace %d, features %v",
				arch, f, n.NumParams(), len(n.State()), n.WorkspaceBytes(64), n.FeatureDims())
		}
	}
	bad := DefaultConfig(ArchSmall)
	bad.Blocks = 0
	if _, err := MeasureFootprint(bad, 8); err == nil || !strings.Contains(err.Error(), "Blocks") {
		t.Errorf("0 blocks: %v, want Blocks named", err)
	}
}
