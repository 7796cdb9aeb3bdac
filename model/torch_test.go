package model

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rotnetPy is the PyTorch reference: $WHORL_ROTNET, else ../shared/reference/rotnet.py beside
// the repository.
var rotnetPy = func() string {
	if p := os.Getenv("WHORL_ROTNET"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "shared", "reference", "rotnet.py"))
	return p
}()

// requireTorch returns the Python that runs rotnet.py, skipping (or, with WHORL_TORCH=require,
// failing) when it or PyTorch with torchvision is missing.
func requireTorch(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	missing := func(what string) {
		if os.Getenv("WHORL_TORCH") == "require" {
			t.Fatalf("torch interop: %s, and WHORL_TORCH=require", what)
		}
		t.Skipf("torch interop: %s (apt-get install python3-torch python3-torchvision; WHORL_TORCH=require makes this a failure)", what)
	}
	if _, err := os.Stat(rotnetPy); err != nil {
		missing(fmt.Sprintf("no reference at %s (set WHORL_ROTNET to its path)", rotnetPy))
	}
	if out, err := exec.Command(py, "-c", "import torch, torchvision").CombinedOutput(); err != nil {
		missing(fmt.Sprintf("%s cannot import torch and torchvision: %v: %s", py, err, strings.TrimSpace(string(out))))
	}
	return py
}

// TestCheckpointsLoadInTorchvision checks that every ResNet's state_dict names and shapes are
// torchvision's, in order, and that its checkpoint loads with rotnet.py's strict loader (the
// values summing to what whorl wrote), with the rotation head and with a 5-class head.
func TestCheckpointsLoadInTorchvision(t *testing.T) {
	skipResNetUnderRace(t)
	py := requireTorch(t)
	for _, m := range []struct{ name, arch, stem string }{
		{"resnet18", ArchResNet18, StemImageNet}, {"resnet34", ArchResNet34, StemImageNet},
		{"resnet50", ArchResNet50, StemImageNet}, {"resnet18-small", ArchResNet18, StemSmall},
		{"resnet50-small", ArchResNet50, StemSmall}, {"small", ArchSmall, ""}, {"nin4", ArchNIN4, ""},
	} {
		t.Run(m.name, func(t *testing.T) {
			cfg := DefaultConfig(m.arch)
			cfg.Stem, cfg.InputSize = m.stem, 32
			n, err := New(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			checkNames(t, n, m.name, py, rotnetPy, "names", m.name)
			n.ReplaceHead(5, 1)
			loadInTorch(t, py, m.name, n)
		})
	}
}

// checkNames runs the reference's "names" command (py with args) and wants n's state_dict names
// and shapes, in order, to be its lines.
func checkNames(t *testing.T, n *Net, name, py string, args ...string) {
	t.Helper()
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		t.Fatalf("%s names %s: %v", args[0], name, err)
	}
	var ours []string
	for _, s := range n.Specs() {
		ours = append(ours, fmt.Sprintf("%s %v", s.Name, strings.ReplaceAll(fmt.Sprint(s.Shape), " ", ", ")))
	}
	if got, want := strings.Join(ours, "\n"), strings.TrimSpace(string(out)); got != want {
		t.Fatalf("state_dict differs from %s's %s:\n%s", args[0], name, firstDiff(got, want))
	}
}

// loadInTorch saves n and loads it with rotnet.py load (strict), comparing the value sums.
func loadInTorch(t *testing.T, py, name string, n *Net) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := SaveCheckpoint(path, n, nil, nil); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, rotnetPy, "load", name, path).CombinedOutput()
	if err != nil {
		t.Fatalf("rotnet.py load %s: %v\n%s", name, err, out)
	}
	var got struct {
		Loaded int     `json:"loaded"`
		Sum    float64 `json:"sum"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rotnet.py load: %v: %s", err, out)
	}
	var want float64
	for _, v := range n.Params() {
		want += float64(v)
	}
	for _, v := range n.State() {
		want += float64(v)
	}
	if got.Loaded != len(n.specs) || abs(got.Sum-want) > 1e-6*max(1, abs(want)) {
		t.Errorf("torch loaded %d tensors summing to %g, want %d summing to %g", got.Loaded, got.Sum, len(n.specs), want)
	}
}

// firstDiff shows where two line lists part.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: whorl %q, torch %q (whorl %d lines, torch %d)", i+1, a, b, len(g), len(w))
		}
	}
	return "equal"
}

func abs(v float64) float64 { return max(v, -v) }

// TestPretextNetworksLoadInTorch checks the pretext networks with extra blocks
// (job config model.pretext_blocks) and the wider ones (model.width) against the repository's PyTorch reference
// (model/pretext_reference.py, built from rotnet.py's modules): the same state_dict names and
// shapes in order, and a strict load of whorl's checkpoint.
func TestPretextNetworksLoadInTorch(t *testing.T) {
	py := requireTorch(t)
	for _, m := range []struct {
		name   string
		arch   string
		blocks int
		width  int
	}{{"small+1", ArchSmall, 4, 0}, {"small+2", ArchSmall, 5, 0}, {"nin3+1", ArchNIN3, 4, 0},
		{"small@256", ArchSmall, 3, 256}, {"small@64+1", ArchSmall, 4, 64}, {"nin3@96", ArchNIN3, 3, 96}} {
		t.Run(m.name, func(t *testing.T) {
			cfg := DefaultConfig(m.arch)
			cfg.Blocks, cfg.InputSize = m.blocks, 32
			if m.width != 0 {
				cfg.Width = m.width
			}
			n, err := New(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			checkNames(t, n, m.name, py, "pretext_reference.py", rotnetPy, "names", m.name)
			path := filepath.Join(t.TempDir(), "ckpt.safetensors")
			if err := SaveCheckpoint(path, n, nil, nil); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(py, "pretext_reference.py", rotnetPy, "load", m.name, path).CombinedOutput(); err != nil {
				t.Fatalf("pretext_reference.py load %s: %v\n%s", m.name, err, out)
			}
		})
	}
}
