package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

// TestSubmitRecognisesTheSameJobWrittenOtherwise submits one job config,
// then the same config indented and with its keys in another order: the
// second submission is the first job (one digest for one job: job.Digest,
// the one its checkpoints carry), while another config is refused as long
// as the first runs.
func TestSubmitRecognisesTheSameJobWrittenOtherwise(t *testing.T) {
	_, cl, ctx := longLeaseNode(t)
	compact := testConfig(t, 2, 16, 100)
	id, err := cl.SubmitJob(ctx, compact)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(compact, &doc); err != nil {
		t.Fatal(err)
	}
	reordered, err := json.MarshalIndent(doc, "", "    ") // map keys sorted: another order than the struct's
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(reordered, compact) {
		t.Fatal("test setup: the rewritten config has the same bytes")
	}
	again, err := cl.SubmitJob(ctx, append(reordered, '\n'))
	if err != nil || again != id {
		t.Fatalf("the same job written otherwise: %q, %v; want the running job %q", again, err, id)
	}
	cfg, _ := job.Parse(compact)
	if want := job.Digest(cfg); len(id) < 12 || id[4:12] != want[:8] {
		t.Errorf("job id %q does not carry the config digest %s", id, want[:8])
	}
	other := testConfig(t, 3, 16, 100)
	if _, err := cl.SubmitJob(ctx, other); !errors.Is(err, client.ErrJobRunning) {
		t.Fatalf("another config while the first runs: %v, want ErrJobRunning", err)
	}
}
