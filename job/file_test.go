package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPresetWithFile checks a job file (submit --job) overlays the preset key by key and that
// unknown keys and bad values are rejected naming the key.
func TestPresetWithFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := PresetWithFile("quick", write("ok.yaml", "pretrain:\n  epochs: 3\ncheckpoint_every_steps: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	quick, _ := Preset("quick")
	if c.Pretrain.Epochs != 3 || c.CheckpointEvery != 7 || c.Pretrain.GlobalBatch != quick.Pretrain.GlobalBatch {
		t.Fatalf("overlay: epochs %d every %d batch %d", c.Pretrain.Epochs, c.CheckpointEvery, c.Pretrain.GlobalBatch)
	}
	for _, tc := range []struct{ body, want string }{
		{"pretrain:\n  epochz: 3\n", "epochz"},
		{"pretrain:\n  global_batch: 0\n", "pretrain.global_batch"},
		{"- a list\n", "mapping"},
	} {
		_, err := PresetWithFile("quick", write("bad.yaml", tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--job %q: %v, want an error naming %s", tc.body, err, tc.want)
		}
	}
}
