package session

import (
	"bytes"
	"strings"
	"testing"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestStatusCountsEpochsFromOne prints a status in the first epoch with a
// checkpoint after its step 5: both are epoch 1, as `whorl run` and the
// store error say (the wire's epochs are 0-based).
func TestStatusCountsEpochsFromOne(t *testing.T) {
	st := &pb.JobStatusResponse{JobId: "job-1", Phase: pb.Phase_PHASE_PRETRAINING, Epoch: 0, TotalEpochs: 9,
		NextStep: 6, TotalSteps: 96, LeaderId: "c0",
		LatestCheckpoint: &pb.Checkpoint{Digest: "0123456789abcdef", Epoch: 0, Step: 5, Size: 10}}
	if got := StatusLine(st); !strings.Contains(got, "epoch 1/9 step 6/96") {
		t.Errorf("status line %q, want epoch 1/9", got)
	}
	var b bytes.Buffer
	if err := PrintStatus(&b, st, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "checkpoint 0123456789ab at epoch 1 step 5") {
		t.Errorf("status:\n%s", b.String())
	}
	// The last epoch stays in range when the state has moved past it.
	st.Epoch = 9
	if got := StatusLine(st); !strings.Contains(got, "epoch 9/9") {
		t.Errorf("status line %q, want epoch 9/9", got)
	}
}
