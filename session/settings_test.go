package session

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
)

// writeJob writes c as a job file without the given keys (top level or
// "section.key") and returns its path.
func writeJob(t *testing.T, c job.Config, drop ...string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range drop {
		if sec, key, ok := strings.Cut(k, "."); ok {
			delete(m[sec].(map[string]any), key)
		} else {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJobConfigFlagsAndFile: a value the job file sets wins over a flag's
// default, an explicit flag that differs is refused naming both, a value
// the file leaves out comes from the flag, and trailing data is refused.
func TestJobConfigFlagsAndFile(t *testing.T) {
	c := job.DefaultConfig()
	c.Seed, c.Data.Dir = 7, "/photos"
	full, bare := writeJob(t, c), writeJob(t, c, "seed", "data.dir")
	trailing := filepath.Join(t.TempDir(), "trailing.json")
	if err := os.WriteFile(trailing, append(c.JSON(), []byte(` {"seed": 3}`)...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     string
		flags    map[string]string // flags given explicitly
		wantSeed uint64
		wantData string
		errHas   []string
	}{
		{"file wins over defaults", full, nil, 7, "/photos", nil},
		{"same explicit value", full, map[string]string{"seed": "7", "data": "/photos"}, 7, "/photos", nil},
		{"explicit seed differs", full, map[string]string{"seed": "5"}, 0, "", []string{"--seed 5", "seed 7", full}},
		{"explicit data differs", full, map[string]string{"data": "/other"}, 0, "", []string{`--data "/other"`, `data.dir "/photos"`}},
		{"file leaves them out: flags", bare, map[string]string{"seed": "5", "data": "/x"}, 5, "/x", nil},
		{"file leaves them out: defaults", bare, nil, 1, "", nil},
		{"trailing data", trailing, nil, 0, "", []string{trailing, "data after the JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Settings{JobFile: tt.file, Preset: job.PresetQuick, Seed: 1,
				Changed: func(name string) bool { _, ok := tt.flags[name]; return ok }}
			if s, ok := tt.flags["seed"]; ok {
				fmt.Sscan(s, &o.Seed)
			}
			o.Data = tt.flags["data"]
			got, err := o.JobConfig()
			if tt.errHas != nil {
				for _, w := range tt.errHas {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("JobConfig = %v, want an error naming %q", err, w)
					}
				}
				return
			}
			if err != nil || got.Seed != tt.wantSeed || got.Data.Dir != tt.wantData {
				t.Fatalf("JobConfig = seed %d data %q, %v; want seed %d data %q", got.Seed, got.Data.Dir, err, tt.wantSeed, tt.wantData)
			}
		})
	}
}

// TestRunNetworkFlags checks --model, --stem and --size: they replace the preset's network and
// are refused when they differ from a job file's.
func TestRunNetworkFlags(t *testing.T) {
	c := job.DefaultConfig()
	c.Data.Dir = "/photos"
	full := writeJob(t, c)
	net := Settings{Model: job.ModelResNet18, Stem: job.StemSmall, Size: 64, Data: "/photos", Seed: 1, Preset: job.PresetQuick,
		Changed: func(name string) bool { return name == "model" || name == "stem" || name == "size" || name == "data" }}
	got, err := net.JobConfig()
	if err != nil || got.Model.Name != job.ModelResNet18 || got.Model.Stem != job.StemSmall || got.Data.ImageSize != 64 {
		t.Errorf("preset with flags: %+v %d, %v; want resnet18 small stem at 64", got.Model, got.Data.ImageSize, err)
	}
	o := net
	o.JobFile = full
	_, err = o.JobConfig()
	for _, w := range []string{"--model resnet18", "model.name small", "--size 64", "data.image_size 32"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("flags against the file: %v, want an error naming %q", err, w)
		}
	}
	o = net
	o.Data = ""
	if _, err := o.JobConfig(); err == nil || !strings.Contains(err.Error(), "stored at 48 px") {
		t.Errorf("resnet18 at 64 on the embedded set: %v, want a refusal naming its 48 px", err)
	}
}

// TestRunModeFlag checks --mode: joint on a preset takes job.DefaultJoint's
// recipe; on a job file that sets another mode it is refused, naming both.
func TestRunModeFlag(t *testing.T) {
	o := Settings{Mode: job.ModeJoint, Seed: 1, Preset: job.PresetQuick, Changed: func(name string) bool { return name == "mode" }}
	got, err := o.JobConfig()
	if err != nil || !got.IsJoint() || got.Joint != job.DefaultJoint(got) {
		t.Fatalf("--mode joint on the quick preset: mode %q joint %+v, %v; want the default joint recipe", got.Mode, got.Joint, err)
	}
	c := job.DefaultConfig()
	c.Mode = job.ModePretrainFinetune
	o.JobFile = writeJob(t, c)
	if _, err := o.JobConfig(); err == nil || !strings.Contains(err.Error(), "--mode joint") || !strings.Contains(err.Error(), "mode pretrain-finetune") {
		t.Errorf("--mode joint against a file's pretrain-finetune: %v, want a refusal naming both", err)
	}
}
