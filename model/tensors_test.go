package model

import "testing"

// TestTensorsShareBuffers checks the gorgonia views: names and shapes follow the specs and a
// write through a Dense changes the network's parameters and gradients.
func TestTensorsShareBuffers(t *testing.T) {
	n, _ := New(Config{Arch: ArchSmall, Blocks: 2, Width: 8, InputSize: 8, Classes: 3}, 1)
	ts := n.Tensors()
	specs := n.Specs()
	if len(ts) != len(specs) {
		t.Fatalf("%d tensors, %d specs", len(ts), len(specs))
	}
	for i, nt := range ts {
		if nt.Name != specs[i].Name || nt.Dense.Size() != specs[i].Size || nt.State != specs[i].State {
			t.Errorf("tensor %d: %s %v, spec %+v", i, nt.Name, nt.Dense.Shape(), specs[i])
		}
	}
	w := ts[0].Dense
	if err := w.SetAt(float32(42), 1, 2, 0, 1); err != nil {
		t.Fatal(err)
	}
	// [cout][cin][kh][kw] = [1][2][0][1] is element ((1*3+2)*3+0)*3+1 of the first tensor.
	if got := n.Params()[((1*3+2)*3+0)*3+1]; got != 42 {
		t.Errorf("write through the Dense view: params hold %g", got)
	}
	g := n.GradTensors()
	if len(g) != 2*2*3+2 || g[len(g)-1].Name != "classifier.bias" {
		t.Fatalf("grad tensors: %d, last %q", len(g), g[len(g)-1].Name)
	}
	g[len(g)-1].Dense.Data().([]float32)[2] = 7
	if n.Grads()[n.NumParams()-1] != 7 {
		t.Error("grad views do not share Grads()")
	}
}
