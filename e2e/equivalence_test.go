package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

// equivalenceTolerance bounds the difference of weights, BatchNorm state
// and pretext history between the single-process loop and any cluster.
//
// Only the float summation order differs between them (1e-7 relative). A
// max-pool window whose two largest inputs are that close, or a ReLU input
// that close to zero, can flip and move one element's gradient; the
// learning rate is 0.01 so that such flips stay below the tolerance, and the
// random crop's zero padding (exactly constant regions: many near-ties) is
// off. A missing, repeated or differently augmented image, or a different
// step count or schedule, is a difference of order 1e-3.
const equivalenceTolerance = 1e-5

// TestClusterReproducesLocalLoop pretrains the same job in one process
// (`whorl run --local`'s loop) and on clusters of 1, 2 and 4 workers (real
// coordinator, real ring, synchronised BatchNorm), and compares the
// committed pretrained checkpoints and the pretext histories with the
// local run's. The joint mode runs on 2 and 3 workers: its labeled batch
// of 5 splits unevenly over 3, so each rank's share of both losses counts.
// A resolution curriculum (an epoch at 8 px, then 16) runs on 3 workers.
func TestClusterReproducesLocalLoop(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	for _, tc := range []struct {
		name       string
		mode       string
		workers    []int
		curriculum []job.CurriculumStage
	}{
		{job.ModePretrainFinetune, job.ModePretrainFinetune, []int{1, 2, 4}, nil},
		{job.ModeJoint, job.ModeJoint, []int{2, 3}, nil},
		{"curriculum", job.ModePretrainFinetune, []int{3}, []job.CurriculumStage{{Until: 0.5, Scale: 0.5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyJob(t, dir, 2)
			c.Pretrain.Augmentation.CropPad = 0
			c.Pretrain.LR = 0.01
			c.Pretrain.Curriculum = tc.curriculum
			if tc.mode == job.ModeJoint {
				c.Mode, c.Joint = job.ModeJoint, job.JointConfig{Weight: 0.5, LabeledBatch: 5}
				c.Supervised.Augmentation.CropPad = 0
			}
			want, wantHist := localPretrain(t, c)
			for _, n := range tc.workers {
				got, hist := pretrainOnCluster(t, c, dir, n)
				dp, ds := maxDiff(want.Params(), got.Params()), maxDiff(want.State(), got.State())
				dh := historyDiff(wantHist, hist)
				t.Logf("%d workers vs --local: max difference %.3g in weights, %.3g in BatchNorm state, %.3g in history", n, dp, ds, dh)
				if dp > equivalenceTolerance || ds > equivalenceTolerance || dh > equivalenceTolerance {
					t.Errorf("%d workers: weights differ by %g, state by %g, history by %g from --local's (tolerance %g)",
						n, dp, ds, dh, equivalenceTolerance)
				}
			}
		})
	}
}

// localPretrain runs the single-process loop on c.
func localPretrain(t *testing.T, c job.Config) (*model.Net, []job.EpochStat) {
	t.Helper()
	ctx := context.Background()
	d, err := job.LoadData(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	st, err := experiment.NewPretrainState(c, len(d.Set.Classes))
	if err != nil {
		t.Fatal(err)
	}
	if err := experiment.Pretrain(ctx, c, d, st, nil, nil); err != nil {
		t.Fatal(err)
	}
	return st.Net, st.History
}

// pretrainOnCluster pretrains c on one coordinator and n workers and returns
// the committed pretrained network and the coordinator's pretext history.
func pretrainOnCluster(t *testing.T, c job.Config, dir string, n int) (*model.Net, []*pb.EpochMetrics) {
	t.Helper()
	lc, client := startCoordinators(t, 1)
	defer lc.Close()
	ws := newWorkers(t, lc.Addrs())
	defer ws.stopAll()
	for i := range n {
		ws.start(fmt.Sprintf("w%d", i), worker.DataLocal, dir)
	}
	// Every worker must be in the ring before the first step, or the
	// first steps run on fewer workers (still exact, but not this test).
	waitUntil(t, time.Minute, "all workers registered", func() bool { return len(status(t, client).GetWorkers()) == n })
	submit(t, client, c)
	waitUntil(t, 2*time.Minute, "pretraining done", pastPretraining(t, client))
	st := status(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, data, err := client.FetchCheckpoint(ctx, st.GetLatestCheckpoint().GetDigest())
	if err != nil {
		t.Fatalf("%d workers: fetch checkpoint: %v", n, err)
	}
	ck, err := model.DecodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Net, st.GetPretextHistory()
}

// historyDiff is the largest difference of epoch loss or accuracy, the
// joint mode's labeled ones included (+Inf when the epochs differ).
func historyDiff(want []job.EpochStat, got []*pb.EpochMetrics) float64 {
	if len(want) != len(got) {
		return math.Inf(1)
	}
	d := 0.0
	for i, w := range want {
		g := got[i]
		if int(g.GetEpoch()) != w.Epoch {
			return math.Inf(1)
		}
		d = max(d, math.Abs(w.Loss-float64(g.GetLoss())), math.Abs(w.Accuracy-float64(g.GetAccuracy())),
			math.Abs(w.ClassLoss-float64(g.GetClassLoss())), math.Abs(w.ClassAccuracy-float64(g.GetClassAccuracy())))
	}
	return d
}

// maxDiff is the largest absolute difference of two equal-length buffers
// (+Inf when the lengths differ).
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
