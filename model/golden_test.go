package model

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenTol is the largest accepted max|got-want| / max|want| per tensor.
const goldenTol = 1e-4

// golden is one PyTorch reference file written by testdata/golden.py.
type golden struct {
	cfg     Config
	tensors map[string][]float32
}

// loadGolden reads testdata/NAME.golden.safetensors.
func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	entries, md, data, err := parseSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	g := golden{tensors: map[string][]float32{}}
	if err := json.Unmarshal([]byte(md["config"]), &g.cfg); err != nil {
		t.Fatal(err)
	}
	for k, e := range entries {
		raw := data[e.DataOffsets[0]:e.DataOffsets[1]]
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		g.tensors[k] = v
	}
	return g
}

// formulaInit sets every parameter from the closed formula of golden.py's formula_init.
func formulaInit(n *Net) {
	k := 0
	for _, t := range n.specs {
		if t.State {
			continue
		}
		p := n.params[t.Off : t.Off+t.Size]
		for i := range p {
			s := hashUniform(k, i)
			switch {
			case strings.HasSuffix(t.Name, "bn.weight"):
				p[i] = float32(1 + 0.1*s)
			case strings.HasSuffix(t.Name, "bn.bias"), t.Name == "classifier.bias":
				p[i] = float32(0.1 * s)
			default:
				p[i] = float32(s / math.Sqrt(float64(t.Size/t.Shape[0])))
			}
		}
		k++
	}
}

// hashUniform is golden.py's hash_uniform: a value in [-1, 1) from a 32-bit hash of (k, i).
func hashUniform(k, i int) float64 {
	h := uint32(uint64(i)*2654435761 + uint64(k)*40503 + 12345)
	h ^= h >> 15
	h *= 0x2C1B3C6D
	h ^= h >> 12
	h *= 0x297A2D39
	h ^= h >> 15
	return float64(h)/(1<<31) - 1
}

// relErr is max|got-want| / max|want|.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = max(den, math.Abs(float64(want[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// check compares got with the golden tensor key.
func (g golden) check(t *testing.T, key string, got []float32) {
	t.Helper()
	want, ok := g.tensors[key]
	if !ok {
		t.Fatalf("golden tensor %q missing", key)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", key, len(got), len(want))
	}
	if e := relErr(got, want); e > goldenTol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %g", key, e, goldenTol)
	}
}

// goldenRun trains a formula-initialised net for 3 steps with opt on the golden batch, checking
// the first step's logits, loss and gradients when checkFirst is set.
func goldenRun(t *testing.T, g golden, opt Optimizer, lr float64, checkFirst bool) *Net {
	t.Helper()
	n, err := New(g.cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	formulaInit(n)
	x := g.tensors["input"]
	labels := make([]int, len(g.tensors["labels"]))
	for i, v := range g.tensors["labels"] {
		labels[i] = int(v)
	}
	for step := range 3 {
		n.ZeroGrads()
		loss, _, err := n.TrainStep(context.Background(), x, labels, 1)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 && checkFirst {
			g.check(t, "loss", []float32{float32(loss)})
			g.check(t, "logits", n.ws.logits[:len(labels)*g.cfg.Classes])
			for _, s := range n.specs {
				if !s.State {
					g.check(t, "grad."+s.Name, n.grads[s.Off:s.Off+s.Size])
				}
			}
		}
		opt.Step(n.Params(), n.Grads(), lr)
	}
	return n
}

// TestGoldenPyTorch checks logits, loss, every gradient, the weights and running statistics
// after 3 Nesterov SGD steps, and eval-mode logits against PyTorch (testdata/golden.py).
// It runs with the vector row kernels (when the CPU has them) and with the portable ones.
func TestGoldenPyTorch(t *testing.T) {
	defer func(v bool) { useAVX2 = v }(useAVX2)
	for _, vec := range []bool{useAVX2, false} {
		useAVX2 = vec
		testGolden(t)
	}
}

// testGolden is one pass of TestGoldenPyTorch.
func testGolden(t *testing.T) {
	for _, name := range []string{"small16", "nin4w48s16"} {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			sgd := NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
			n := goldenRun(t, g, sgd, 0.1, true)
			for _, s := range n.specs {
				g.check(t, "sgd3."+s.Name, n.bufferOf(s)[s.Off:s.Off+s.Size])
			}
			n.SetTraining(false)
			logits, err := n.Forward(context.Background(), g.tensors["input"], len(g.tensors["labels"]))
			if err != nil {
				t.Fatal(err)
			}
			g.check(t, "eval_logits", logits)
			if _, ok := g.tensors["adam3.classifier.bias"]; !ok {
				return
			}
			a := goldenRun(t, g, NewAdam(AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4}), 1e-3, false)
			for _, s := range a.specs {
				if !s.State {
					g.check(t, "adam3."+s.Name, a.params[s.Off:s.Off+s.Size])
				}
			}
		})
	}
}
