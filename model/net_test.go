package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"nin4 default", func(*Config) {}, ""},
		{"unknown arch", func(c *Config) { c.Arch = "resnet" }, "Arch"},
		{"too few blocks", func(c *Config) { c.Blocks = 1 }, "Blocks = 1, must be in 2..16"},
		{"too many blocks", func(c *Config) { c.Blocks = 17 }, "Blocks"},
		{"narrow", func(c *Config) { c.Width = 2 }, "Width = 2, must be in"},
		{"tiny input", func(c *Config) { c.InputSize = 3 }, "InputSize = 3, must be in 4..1024"},
		{"no classes", func(c *Config) { c.Classes = 0 }, "Classes = 0, must be in 1.."},
		{"small odd width", func(c *Config) { c.Arch, c.Blocks, c.Width = ArchSmall, 3, 130 }, "divisible by 4"},
		{"small too deep for input", func(c *Config) { c.Arch, c.Blocks, c.InputSize = ArchSmall, 6, 16 }, "InputSize = 16, must be in 32.."},
		{"resnet18", func(c *Config) { *c = DefaultConfig(ArchResNet18) }, ""},
		{"resnet50 small stem at 8", func(c *Config) { *c = DefaultConfig(ArchResNet50); c.Stem, c.InputSize = StemSmall, 8 }, ""},
		{"resnet below 32", func(c *Config) { *c = DefaultConfig(ArchResNet34); c.InputSize = 16 }, "InputSize = 16, must be in 32..1024"},
		{"resnet width", func(c *Config) { *c = DefaultConfig(ArchResNet50); c.Width = 512 }, "Width = 512, must be 2048 for resnet50"},
		{"resnet blocks", func(c *Config) { *c = DefaultConfig(ArchResNet18); c.Blocks = 4 }, "Blocks = 4, must be 5"},
		{"resnet stem", func(c *Config) { *c = DefaultConfig(ArchResNet18); c.Stem = "cifar" }, "Stem"},
		{"stem of nin", func(c *Config) { c.Stem = StemSmall }, "only ResNets have a stem"},
	}
	for _, c := range cases {
		cfg := DefaultConfig(ArchNIN4)
		c.mut(&cfg)
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrConfig)):
			t.Errorf("%s: got %v, want an ErrConfig containing %q", c.name, err, c.want)
		}
	}
}

// TestLayoutMatchesRotnet checks parameter counts and the feature shapes of every block.
func TestLayoutMatchesRotnet(t *testing.T) {
	cases := []struct {
		arch   string
		params int
		shapes [][]int
	}{
		// Counts from rotnet.py: sum(p.numel() for p in MODELS[m]().parameters()).
		{ArchNIN4, 1411140, [][]int{{2, 96, 16, 16}, {2, 192, 8, 8}, {2, 192, 8, 8}, {2, 192, 8, 8}}},
		{ArchSmall, 287972, [][]int{{2, 32, 16, 16}, {2, 64, 8, 8}, {2, 128, 8, 8}}},
		{ArchResNet18, 11178564, [][]int{{2, 64, 8, 8}, {2, 64, 8, 8}, {2, 128, 4, 4}, {2, 256, 2, 2}, {2, 512, 1, 1}}},
		{ArchResNet34, 21286724, [][]int{{2, 64, 8, 8}, {2, 64, 8, 8}, {2, 128, 4, 4}, {2, 256, 2, 2}, {2, 512, 1, 1}}},
		{ArchResNet50, 23516228, [][]int{{2, 64, 8, 8}, {2, 256, 8, 8}, {2, 512, 4, 4}, {2, 1024, 2, 2}, {2, 2048, 1, 1}}},
		{ArchResNet18 + "-small", 11170884, [][]int{{2, 64, 32, 32}, {2, 64, 32, 32}, {2, 128, 16, 16}, {2, 256, 8, 8}, {2, 512, 4, 4}}},
	}
	for _, c := range cases {
		if raceDetector && c.params > 1e7 {
			continue // ResNet-scale: runs without -race (see skipResNetUnderRace)
		}
		arch, small := strings.CutSuffix(c.arch, "-small")
		cfg := DefaultConfig(arch)
		cfg.InputSize = 32
		if small {
			cfg.Stem = StemSmall
		}
		n, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n.NumParams() != c.params {
			t.Errorf("%s: %d parameters, want %d", c.arch, n.NumParams(), c.params)
		}
		x := randSlice(rand.New(rand.NewPCG(1, 1)), 2*3*32*32)
		n.SetTraining(false)
		for i, want := range c.shapes {
			f, shp, err := n.Features(context.Background(), x, 2, i+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(shp) != 4 || shp[0] != want[0] || shp[1] != want[1] || shp[2] != want[2] || shp[3] != want[3] ||
				len(f) != want[0]*want[1]*want[2]*want[3] {
				t.Errorf("%s block %d: shape %v (%d values), want %v", c.arch, i+1, shp, len(f), want)
			}
		}
		if _, _, err := n.Features(context.Background(), x, 2, len(c.shapes)+1); !errors.Is(err, ErrShape) {
			t.Errorf("%s: upto past the last block: %v", c.arch, err)
		}
	}
}

// TestReplaceHeadAndClone checks the body survives a new head and clones are independent.
func TestReplaceHeadAndClone(t *testing.T) {
	n, _ := New(Config{Arch: ArchSmall, Blocks: 2, Width: 8, InputSize: 8, Classes: 4}, 1)
	body := append([]float32(nil), n.Params()[:n.NumParams()-8*4-4]...)
	c := n.Clone()
	n.ReplaceHead(5, 9)
	if n.Config().Classes != 5 || n.NumParams() != len(body)+8*5+5 {
		t.Fatalf("after ReplaceHead: classes %d, %d params", n.Config().Classes, n.NumParams())
	}
	if !equalF32(n.Params()[:len(body)], body) {
		t.Fatal("ReplaceHead changed the body")
	}
	x := randSlice(rand.New(rand.NewPCG(2, 2)), 3*3*8*8)
	n.ZeroGrads()
	if _, _, err := n.TrainStep(context.Background(), x, []int{4, 0, 2}, 1); err != nil {
		t.Fatal(err)
	}
	if equalF32(c.Params()[:len(body)], make([]float32, len(body))) || c.Config().Classes != 4 {
		t.Fatal("clone lost its parameters or changed with the original")
	}
	if _, _, err := n.TrainStep(context.Background(), x, []int{5, 0, 2}, 1); !errors.Is(err, ErrShape) {
		t.Fatalf("label 5 with 5 classes: %v", err)
	}
	if err := c.Backward(context.Background(), make([]float32, 12)); !errors.Is(err, ErrNoForward) {
		t.Fatalf("backward before forward: %v", err)
	}
}

func TestOptimizerConfigs(t *testing.T) {
	if err := (SGDConfig{Momentum: 0, Nesterov: true}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("Nesterov without momentum: %v", err)
	}
	if err := (AdamConfig{Beta1: 0.9, Beta2: 1, Eps: 1e-8}).Validate(); err == nil || !strings.Contains(err.Error(), "Beta2") {
		t.Errorf("Beta2 1: %v", err)
	}
	if DefaultSGDConfig().Validate() != nil || DefaultAdamConfig().Validate() != nil {
		t.Error("default configs are invalid")
	}
	// Plain SGD (no momentum, no decay) is p -= lr*g exactly.
	p, g := []float32{1, -2}, []float32{0.5, 0.25}
	NewSGD(SGDConfig{}).Step(p, g, 0.1)
	if p[0] != 1-0.05 || p[1] != -2-0.025 {
		t.Errorf("plain SGD: %v", p)
	}
}

// TestConfigValidateReportsEveryProblem checks Validate returns all
// problems at once, not the first.
func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig(ArchNIN4)
	cfg.Width, cfg.Classes = 2, 0
	err := cfg.Validate()
	for _, field := range []string{"Width", "Classes"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
}

// skipResNetUnderRace skips a ResNet-scale test under the race detector, which makes the
// element loops over 11-23 M parameters some 10x slower: `make unit` runs these tests in its
// pass of ./model/... without -race, and the race pass covers the same code paths with the
// small networks.
func skipResNetUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("ResNet-scale test: runs without -race (make unit's model pass)")
	}
}

// TestPooledFeaturesAreBlockMeans checks PooledFeatures against Features: block b's pooled
// value is the mean over the pixels of Features(upto=b+1), for a sequential net and a ResNet.
func TestPooledFeaturesAreBlockMeans(t *testing.T) {
	for _, arch := range []string{ArchSmall, ArchResNet18} {
		if raceDetector && arch == ArchResNet18 {
			continue // ResNet-scale: runs without -race (see skipResNetUnderRace)
		}
		cfg := DefaultConfig(arch)
		cfg.InputSize = 32
		n, err := New(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		n.SetTraining(false)
		x := randSlice(rand.New(rand.NewPCG(2, 2)), 3*3*32*32)
		pooled, err := n.PooledFeatures(context.Background(), x, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(pooled) != n.NumBlocks() {
			t.Fatalf("%s: %d blocks pooled, want %d", arch, len(pooled), n.NumBlocks())
		}
		for b := range pooled {
			f, shp, err := n.Features(context.Background(), x, 3, b+1)
			if err != nil {
				t.Fatal(err)
			}
			N, C, hw := shp[0], shp[1], shp[2]*shp[3]
			if len(pooled[b]) != N*C {
				t.Fatalf("%s block %d: %d pooled values, want %d", arch, b+1, len(pooled[b]), N*C)
			}
			for i := range N {
				for c := range C {
					var sum float64
					for _, v := range f[(i*C+c)*hw : (i*C+c+1)*hw] {
						sum += float64(v)
					}
					if want, got := sum/float64(hw), float64(pooled[b][i*C+c]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("%s block %d image %d channel %d: pooled %g, mean of Features %g", arch, b+1, i, c, got, want)
					}
				}
			}
		}
	}
}
