package job

import (
	"errors"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/shard"
)

// TestCheckSkipped refuses more unreadable photos than
// data.max_skipped_fraction allows, as a data problem (shard.ErrBadImage)
// that names the count, the folder, the files and the setting.
func TestCheckSkipped(t *testing.T) {
	c := DataConfig{Dir: "/photos", MaxSkippedFraction: 0.05}
	sk := []shard.Skipped{{Path: "daisy/a.jpg", Reason: "truncated"}, {Path: "rose/b.jpg", Reason: "not an image"}}
	if err := checkSkipped(c, 98, sk); err != nil {
		t.Errorf("2 of 100 within 0.05: %v", err)
	}
	err := checkSkipped(c, 18, sk)
	if !errors.Is(err, shard.ErrBadImage) || errors.Is(err, ErrConfig) {
		t.Fatalf("2 of 20: %v, want shard.ErrBadImage and not a config error", err)
	}
	for _, want := range []string{"2 of 20 image files under /photos", "10.0%", "data.max_skipped_fraction allows (0.05)", "daisy/a.jpg (truncated)", "rose/b.jpg (not an image)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
