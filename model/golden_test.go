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
	err     map[string]float64 // float32 PyTorch's relative error per tensor (newer files)
	optim   [3]float64         // SGD lr, Adam lr, Adam eps
	key     int                // hash stream of the input
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
	g := golden{tensors: map[string][]float32{}, optim: [3]float64{0.1, 1e-3, 1e-8}, key: 1000}
	if err := json.Unmarshal([]byte(md["config"]), &g.cfg); err != nil {
		t.Fatal(err)
	}
	for k, dst := range map[string]any{"err": &g.err, "optim": &g.optim, "input_key": &g.key} {
		if v, ok := md[k]; ok {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				t.Fatalf("%s: metadata %s: %v", name, k, err)
			}
		}
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
			case len(t.Shape) == 1 && strings.HasSuffix(t.Name, ".weight"): // BatchNorm weights
				p[i] = float32(1 + 0.1*s)
			case len(t.Shape) == 1: // BatchNorm and head biases
				p[i] = float32(0.1 * s)
			default:
				p[i] = float32(s / math.Sqrt(float64(t.Size/t.Shape[0])))
			}
		}
		k++
	}
}

// formulaInput is golden.py's formula_input: the batch from hash stream key.
func formulaInput(g golden, batch int) []float32 {
	if x, ok := g.tensors["input"]; ok {
		return x
	}
	S := g.cfg.InputSize
	x := make([]float32, batch*3*S*S)
	for i := range x {
		x[i] = float32(1.5 * hashUniform(g.key, i))
	}
	return x
}

// sampleIndex is golden.py's sample_index: the j-th stored element of a tensor of n.
func sampleIndex(j, n int) int {
	step := n / goldenSamples
	return j*step + (j*7919)%step
}

// goldenSamples is golden.py's SAMPLES.
const goldenSamples = 256

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

// check compares got with the golden tensor key: element-wise within the tolerance relative to
// the largest reference value, on the stored samples of a compacted tensor (whose sums must then
// agree within the tolerance of the sum of magnitudes).
func (g golden) check(t *testing.T, key string, got []float32) {
	t.Helper()
	want, ok := g.tensors[key]
	if !ok {
		t.Fatalf("golden tensor %q missing", key)
	}
	tol := max(goldenTol, 4*g.err[key])
	if stats, ok := g.tensors[key+"#stats"]; ok {
		g.checkSampled(t, key, got, want, stats, tol)
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", key, len(got), len(want))
	}
	if e := relErr(got, want); e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.3g", key, e, tol)
	}
}

// checkSampled is check for a tensor stored as samples and [max |v|, sum v, sum |v|].
func (g golden) checkSampled(t *testing.T, key string, got, want, stats []float32, tol float64) {
	t.Helper()
	var num, amax, sum, abs float64
	for j, w := range want {
		num = max(num, math.Abs(float64(got[sampleIndex(j, len(got))])-float64(w)))
	}
	for _, v := range got {
		amax, sum, abs = max(amax, math.Abs(float64(v))), sum+float64(v), abs+math.Abs(float64(v))
	}
	errs := map[string]float64{
		"sampled elements": num / float64(stats[0]), "max |v|": math.Abs(amax-float64(stats[0])) / float64(stats[0]),
		"sum": math.Abs(sum-float64(stats[1])) / float64(stats[2]), "sum |v|": math.Abs(abs-float64(stats[2])) / float64(stats[2]),
	}
	for what, e := range errs {
		if e > tol || math.IsNaN(e) {
			t.Errorf("%s: %s: relative error %.3g > %.3g", key, what, e, tol)
		}
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
	labels := make([]int, len(g.tensors["labels"]))
	x := formulaInput(g, len(labels))
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

// goldenCases are the files of testdata/golden.py's CASES.
var goldenCases = []string{"small16", "nin4w48s16", "resnet18s64", "resnet18s96", "resnet18-smalls16", "resnet18-smalls32"}

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
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "resnet") {
				skipResNetUnderRace(t)
			}
			g := loadGolden(t, name)
			sgd := NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
			n := goldenRun(t, g, sgd, g.optim[0], true)
			for _, s := range n.specs {
				g.check(t, "sgd3."+s.Name, n.bufferOf(s)[s.Off:s.Off+s.Size])
			}
			n.SetTraining(false)
			logits, err := n.Forward(context.Background(), formulaInput(g, len(g.tensors["labels"])), len(g.tensors["labels"]))
			if err != nil {
				t.Fatal(err)
			}
			g.check(t, "eval_logits", logits)
			if _, ok := g.tensors["adam3."+headName(g.cfg)+".bias"]; !ok {
				return
			}
			a := goldenRun(t, g, NewAdam(AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: g.optim[2], WeightDecay: 1e-4}), g.optim[1], false)
			for _, s := range a.specs {
				if !s.State {
					g.check(t, "adam3."+s.Name, a.params[s.Off:s.Off+s.Size])
				}
			}
		})
	}
}
