package model

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointRoundTrip saves every architecture with an optimizer and reloads it.
func TestCheckpointRoundTrip(t *testing.T) {
	for _, arch := range []string{ArchNIN4, ArchNIN3, ArchSmall, ArchResNet18} {
		t.Run(arch, func(t *testing.T) {
			cfg := DefaultConfig(arch)
			if cfg.IsResNet() {
				skipResNetUnderRace(t)
			} else {
				cfg.Width = 16 // names and layout do not depend on the width; keeps -race fast
			}
			n, err := New(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			n.State()[3] = 0.5
			opt := NewSGD(DefaultSGDConfig())
			for i := range n.Grads() {
				n.Grads()[i] = float32(i%7) * 1e-3
			}
			opt.Step(n.Params(), n.Grads(), 0.1)
			path := filepath.Join(t.TempDir(), "c.safetensors")
			if err := SaveCheckpoint(path, n, opt, map[string]string{"epoch": "3"}); err != nil {
				t.Fatal(err)
			}
			c, err := ReadCheckpoint(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Net.Config() != n.Config() || c.Meta["epoch"] != "3" {
				t.Fatalf("config %+v meta %v", c.Net.Config(), c.Meta)
			}
			if !equalF32(c.Net.Params(), n.Params()) || !equalF32(c.Net.State(), n.State()) {
				t.Fatal("parameters or state differ after reload")
			}
			opt2 := NewSGD(DefaultSGDConfig())
			if err := c.RestoreOptimizer(opt2); err != nil {
				t.Fatal(err)
			}
			if !equalF32(opt2.State(), opt.State()) {
				t.Fatal("optimizer state differs after reload")
			}
			if err := c.RestoreOptimizer(NewAdam(DefaultAdamConfig())); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("restoring SGD state into Adam: %v", err)
			}
		})
	}
}

// TestCheckpointRejectsBadInput checks truncated and foreign files fail with ErrCheckpoint.
func TestCheckpointRejectsBadInput(t *testing.T) {
	n, _ := New(DefaultConfig(ArchSmall), 1)
	good, err := EncodeCheckpoint(n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(DefaultConfig(ArchNIN3), 1)
	foreign, _ := EncodeCheckpoint(other, nil, nil)
	foreign = bytes.Replace(foreign, []byte(`blocks\":3`), []byte(`blocks\":4`), 1)
	cases := map[string][]byte{
		"empty":        nil,
		"short":        good[:5],
		"truncated":    good[:len(good)-10],
		"header only":  good[:len(good)/100],
		"not json":     append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte("nope")...),
		"wrong config": foreign,
	}
	for name, b := range cases {
		if _, err := DecodeCheckpoint(b); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: got %v, want ErrCheckpoint", name, err)
		}
	}
	if _, _, err := LoadCheckpoint(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzDecodeCheckpoint feeds arbitrary bytes to the decoder: errors are fine, panics are not.
func FuzzDecodeCheckpoint(f *testing.F) {
	n, _ := New(Config{Arch: ArchSmall, Blocks: 1, Width: 4, InputSize: 4, Classes: 2}, 1)
	good, _ := EncodeCheckpoint(n, NewSGD(DefaultSGDConfig()), map[string]string{"k": "v"})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	for _, b := range foreignCheckpoints {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCheckpoint(b)
		if err == nil && c.Net == nil {
			t.Fatal("nil net without error")
		}
	})
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInferTorchvisionConfig decodes state_dicts without whorl's metadata, as torchvision
// writes them, and infers each ResNet's depth and stem.
func TestInferTorchvisionConfig(t *testing.T) {
	skipResNetUnderRace(t)
	for _, c := range []struct{ arch, stem string }{
		{ArchResNet18, StemImageNet}, {ArchResNet34, StemImageNet}, {ArchResNet50, StemSmall},
	} {
		cfg := DefaultConfig(c.arch)
		cfg.Stem, cfg.Classes = c.stem, 5
		n, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := EncodeCheckpoint(n, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		entries, _, data, err := parseSafetensors(b)
		if err != nil {
			t.Fatal(err)
		}
		got := inferConfig(entries)
		if got.Arch != c.arch || got.Stem != c.stem || got.Classes != 5 || got.Width != cfg.Width || got.Validate() != nil {
			t.Errorf("%s %s: inferred %+v", c.arch, c.stem, got)
		}
		m := build(got)
		if err := m.fill(entries, data); err != nil || !equalF32(m.Params(), n.Params()) {
			t.Errorf("%s: refilled from the state_dict: %v", c.arch, err)
		}
	}
}

// TestOptimizerStateOutsideTheHeader checks the optimizer state travels as a tensor of the data:
// the header stays a few kilobytes however large the state (ResNet-18's Adam state is 89 MB,
// which as base64 metadata passed safetensors' 100 MB header bound and failed fine-tuning), the
// state round-trips, and a checkpoint of the older layout (state in the metadata) still reads.
func TestOptimizerStateOutsideTheHeader(t *testing.T) {
	cfg := DefaultConfig(ArchSmall)
	n, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	opt := NewAdam(DefaultAdamConfig())
	for i := range n.Grads() {
		n.Grads()[i] = float32(i%5) * 1e-2
	}
	opt.Step(n.Params(), n.Grads(), 1e-3)
	b, err := EncodeCheckpoint(n, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hl := binary.LittleEndian.Uint64(b); hl > 16<<10 {
		t.Errorf("header of %d bytes for %d parameters with Adam state: the state is in the header", hl, n.NumParams())
	}
	c, err := DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	restored := NewAdam(DefaultAdamConfig())
	if err := c.RestoreOptimizer(restored); err != nil || !equalF32(restored.State(), opt.State()) {
		t.Fatalf("Adam state after the round trip: %v", err)
	}
	if _, ok := c.Meta[MetaOptimizerState]; ok {
		t.Error("the decoded metadata still holds the optimizer state")
	}

	// The older layout: no state tensor, the state base64 in the metadata.
	entries, md, data, err := parseSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(entries, TensorOptimizerState)
	md[MetaOptimizerState] = base64.StdEncoding.EncodeToString(f32Bytes(opt.State()))
	header := map[string]any{"__metadata__": md}
	for k, e := range entries {
		header[k] = e
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	old := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	old = append(append(old, h...), data...)
	c, err = DecodeCheckpoint(old)
	if err != nil {
		t.Fatalf("older checkpoint layout: %v", err)
	}
	restored = NewAdam(DefaultAdamConfig())
	if err := c.RestoreOptimizer(restored); err != nil || !equalF32(restored.State(), opt.State()) || !equalF32(c.Net.Params(), n.Params()) {
		t.Fatalf("older layout: state or parameters differ (%v)", err)
	}
}
