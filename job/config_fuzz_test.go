package job

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: a job configuration comes from a user or a client over the
// network. Any bytes are refused with ErrConfig or give a configuration
// that round-trips through its JSON with the same digest, and that the
// roles read (outputs, blocks, augmentation, steps) without panicking.
func FuzzParse(f *testing.F) {
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.JSON())
	}
	f.Add([]byte(`{"seed":1}`))
	f.Add([]byte(`{"pretrain":{"epochs":-1}}`))
	f.Add([]byte(`{"model":{"name":"small","size":1e9}}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Parse = %v, not ErrConfig", err)
			}
			return
		}
		again, err := Parse(c.JSON())
		if err != nil {
			t.Fatalf("a valid configuration's own JSON is refused: %v\n%s", err, c.JSON())
		}
		if !bytes.Equal(again.JSON(), c.JSON()) || Digest(again) != Digest(c) {
			t.Fatalf("round trip changed the configuration:\n%s\n%s", c.JSON(), again.JSON())
		}
		if c.Model.Blocks() < 1 || c.PretrainOutputs(5) < 4 {
			t.Fatalf("valid configuration with %d blocks, %d outputs", c.Model.Blocks(), c.PretrainOutputs(5))
		}
		if _, err := SetKeys(b); err != nil {
			t.Fatalf("SetKeys of an accepted document: %v", err)
		}
		_ = c.Pretrain.Augmentation.Shard(c.Data.ImageSize)
		_ = NumSteps(1000, c.Pretrain.GlobalBatch)
	})
}
