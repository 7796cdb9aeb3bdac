package coordinator

import (
	"testing"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestCheckpointCarriesLastStep uploads, through the client, a checkpoint
// one step ahead of the progress with the metric of that step: the leader
// keeps it with the checkpoint (a rollback to it records the step), and
// drops it once the step's own report comes. The client once rebuilt the
// header and lost the field.
func TestCheckpointCarriesLastStep(t *testing.T) {
	c, cl, ctx := longLeaseNode(t)
	a := startPretraining(t, ctx, cl, "w", testConfig(t, 1, 8, 1))
	if _, err := report(ctx, cl, "w", a, 0, 0); err != nil {
		t.Fatal(err)
	}
	hdr := &pb.CheckpointHeader{WorkerId: "w", Generation: a.GetGeneration(), Epoch: 0, Step: 2,
		LastStep: &pb.StepMetrics{Epoch: 0, Step: 1, Loss: 1.25, Accuracy: 0.5}}
	if _, err := cl.CommitCheckpoint(ctx, hdr, []byte("weights after step 1")); err != nil {
		t.Fatal(err)
	}
	ck := c.node(0).State().Job.Checkpoint
	if ck == nil || ck.Ahead == nil || ck.Ahead.Step != 1 || ck.Ahead.Loss != 1.25 || ck.Ahead.Samples == 0 {
		t.Fatalf("checkpoint %+v: want the metric of step 1 kept (loss 1.25, the step's images)", ck)
	}
	if _, err := report(ctx, cl, "w", a, 0, 1); err != nil {
		t.Fatal(err)
	}
	if ck := c.node(0).State().Job.Checkpoint; ck.Ahead != nil {
		t.Errorf("step 1 reported, and the checkpoint still holds its metric: %+v", ck.Ahead)
	}
}
