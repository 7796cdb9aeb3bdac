package main

import (
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

// predictFixture writes a small checkpoint (with or without a normaliser) and two PNG images.
func predictFixture(t *testing.T, withNorm bool) (ckpt string, images []string) {
	t.Helper()
	dir := t.TempDir()
	n, err := model.New(model.Config{Arch: model.ArchSmall, Blocks: 2, Width: 8, InputSize: 8, Classes: 3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{job.MetaClassNames: `["daisy","rose","tulip"]`}
	if withNorm {
		meta[job.MetaNormMean], meta[job.MetaNormStd] = "[0.5,0.4,0.3]", "[0.25,0.25,0.25]"
	}
	ckpt = filepath.Join(dir, "c.safetensors")
	if err := model.SaveCheckpoint(ckpt, n, nil, meta); err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		img := image.NewRGBA(image.Rect(0, 0, 12, 10))
		for i := range 12 * 10 {
			img.Set(i%12, i/12, color.RGBA{uint8(i * (k + 3)), uint8(200 - i), uint8(k * 90), 255})
		}
		p := filepath.Join(dir, string(rune('a'+k))+".png")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		images = append(images, p)
	}
	return ckpt, images
}

func TestPredictJSON(t *testing.T) {
	ckpt, imgs := predictFixture(t, true)
	out, err := runWhorl(t, "predict", "--checkpoint", ckpt, "--image", imgs[0], "--image", imgs[1], "--json")
	if err != nil {
		t.Fatal(err)
	}
	var preds []experiment.Prediction
	if err := json.Unmarshal([]byte(out), &preds); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if len(preds) != 2 {
		t.Fatalf("%d predictions, want 2", len(preds))
	}
	for i, p := range preds {
		if p.Image != imgs[i] || len(p.Logits) != 3 || p.Label != []string{"daisy", "rose", "tulip"}[p.Class] {
			t.Errorf("prediction %d: %+v", i, p)
		}
		var sum float64
		for _, q := range p.Probabilities {
			sum += q
		}
		if sum < 0.999 || sum > 1.001 || p.Probability != p.Probabilities[p.Class] {
			t.Errorf("prediction %d: probabilities %v", i, p.Probabilities)
		}
	}
}

func TestPredictErrors(t *testing.T) {
	ckpt, imgs := predictFixture(t, false)
	bad := filepath.Join(t.TempDir(), "bad.png")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A safetensors file of another model (it once panicked: negative shift).
	foreign := filepath.Join(t.TempDir(), "other.safetensors")
	header := `{"encoder.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`
	raw := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	if err := os.WriteFile(foreign, append(append(raw, header...), make([]byte, 16)...), 0o644); err != nil {
		t.Fatal(err)
	}
	// A checkpoint whose normaliser metadata is malformed.
	n, err := model.New(model.Config{Arch: model.ArchSmall, Blocks: 2, Width: 8, InputSize: 8, Classes: 3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	badNorm := filepath.Join(t.TempDir(), "badnorm.safetensors")
	if err := model.SaveCheckpoint(badNorm, n, nil, map[string]string{job.MetaNormMean: "[1,2]", job.MetaNormStd: "[1,1,1]"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no normaliser", []string{"--checkpoint", ckpt, "--image", imgs[0]}, "--mean and --std"},
		{"bad mean", []string{"--checkpoint", ckpt, "--image", imgs[0], "--mean", "1,2", "--std", "1,1,1"}, "3 comma-separated"},
		{"zero std", []string{"--checkpoint", ckpt, "--image", imgs[0], "--mean", "0,0,0", "--std", "1,0,1"}, "want > 0"},
		{"bad image", []string{"--checkpoint", ckpt, "--image", bad, "--mean", "0,0,0", "--std", "1,1,1"}, bad},
		{"not a checkpoint", []string{"--checkpoint", imgs[0], "--image", imgs[0]}, "invalid checkpoint"},
		{"another model", []string{"--checkpoint", foreign, "--image", imgs[0]}, foreign + ": invalid checkpoint: not a network whorl can load"},
		{"bad metadata mean", []string{"--checkpoint", badNorm, "--image", imgs[0]}, "checkpoint " + badNorm + " metadata " + job.MetaNormMean + ` "1,2": want 3`},
	}
	for _, c := range cases {
		_, err := runWhorl(t, append([]string{"predict"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	out, err := runWhorl(t, "predict", "--checkpoint", ckpt, "--image", imgs[0], "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2")
	if err != nil || !strings.Contains(out, imgs[0]+": ") || !strings.Contains(out, "logits [") {
		t.Errorf("flags normaliser: %q, %v", out, err)
	}
}
