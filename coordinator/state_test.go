package coordinator

import (
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testJob is a job of n images, batches of batch, epochs epochs.
func testJob(n, batch, epochs int) Job {
	return Job{ID: "j1", ConfigJSON: []byte(`{}`), Params: JobParams{Seed: 9, Epochs: epochs, GlobalBatch: batch, CheckpointInterval: 2}}
}

func ids(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestCommandSequence applies a job's life through failures and checks each
// command's effect or refusal.
func TestCommandSequence(t *testing.T) {
	s := NewState()
	gen := func() uint64 { return s.Generation }
	steps := []struct {
		name  string
		cmd   func() Command
		err   error
		check func(t *testing.T)
	}{
		{"submit", func() Command { return &SubmitJob{Job: testJob(40, 8, 2)} }, nil,
			func(t *testing.T) { want(t, "phase", s.Job.Phase, PhasePending) }},
		{"second submit refused", func() Command { return &SubmitJob{Job: Job{ID: "j2"}} }, client.ErrJobRunning, nil},
		{"start of unknown job", func() Command { return &StartPretraining{JobID: "nope", TrainIDs: ids(40)} }, client.ErrNoJob, nil},
		{"register w1", func() Command { return &RegisterWorker{ID: "w1", RingAddr: "a1", Time: t0} }, nil, nil},
		{"register w2", func() Command { return &RegisterWorker{ID: "w2", RingAddr: "a2", Time: t0.Add(time.Second)} }, nil,
			func(t *testing.T) { want(t, "ring", s.Ring, []string{"w1", "w2"}) }},
		{"start", func() Command { return &StartPretraining{JobID: "j1", TrainIDs: ids(40), Time: t0} }, nil,
			func(t *testing.T) {
				want(t, "phase", s.Job.Phase, PhasePretraining)
				want(t, "resume", s.Job.Resume, true)
				want(t, "steps", s.Job.StepsInEpoch(), 5)
			}},
		{"stale step", func() Command { return &StepDone{JobID: "j1", Generation: gen() - 1} }, cluster.ErrStaleGeneration, nil},
		{"step ahead", func() Command { return &StepDone{JobID: "j1", Generation: gen(), Step: 1} }, client.ErrBadStep, nil},
		{"step 0", func() Command { return &StepDone{JobID: "j1", Generation: gen(), Step: 0} }, nil,
			func(t *testing.T) {
				want(t, "next", s.Job.NextStep, 1)
				want(t, "resume", s.Job.Resume, false)
				want(t, "synced", s.Synced, []string{"w1", "w2"})
			}},
		{"step 0 again is a no-op", func() Command { return &StepDone{JobID: "j1", Generation: gen(), Step: 0} }, nil,
			func(t *testing.T) { want(t, "next", s.Job.NextStep, 1); want(t, "metrics", len(s.Job.Metrics), 1) }},
		{"checkpoint two steps ahead", func() Command {
			return &CommitCheckpoint{JobID: "j1", Generation: gen(), Checkpoint: Checkpoint{Digest: digestOf("d2"), Step: 3}}
		}, client.ErrBadStep, nil},
		{"checkpoint", func() Command {
			return &CommitCheckpoint{JobID: "j1", Generation: gen(), Checkpoint: Checkpoint{Digest: digestOf("d1"), Step: 1}}
		}, nil,
			func(t *testing.T) { want(t, "checkpoint", s.Job.Checkpoint.Digest, digestOf("d1")) }},
		{"step 1", func() Command { return &StepDone{JobID: "j1", Generation: gen(), Step: 1} }, nil, nil},
		{"w1 dies: w2 keeps the weights", func() Command { return &RemoveWorkers{IDs: []string{"w1"}, Time: t0} }, nil,
			func(t *testing.T) {
				want(t, "ring", s.Ring, []string{"w2"})
				want(t, "next", s.Job.NextStep, 2)
				want(t, "resume", s.Job.Resume, false)
			}},
		{"w3 joins after w2", func() Command { return &RegisterWorker{ID: "w3", RingAddr: "a3", Time: t0.Add(-time.Hour)} }, nil,
			func(t *testing.T) { want(t, "ring (synced first)", s.Ring, []string{"w2", "w3"}) }},
		{"w2 dies: w3 never synced, roll back", func() Command { return &RemoveWorkers{IDs: []string{"w2"}, Time: t0} }, nil,
			func(t *testing.T) {
				want(t, "next", s.Job.NextStep, 1)
				want(t, "resume", s.Job.Resume, true)
				want(t, "rolled back at", s.Job.RolledBackAt, s.Generation)
			}},
		{"old generation checkpoint refused", func() Command {
			return &CommitCheckpoint{JobID: "j1", Generation: gen() - 1, Checkpoint: Checkpoint{Digest: digestOf("d3"), Step: 1}}
		}, cluster.ErrStaleGeneration, nil},
		{"w3 dies: wait", func() Command { return &RemoveWorkers{IDs: []string{"w3"}, Time: t0.Add(time.Minute)} }, nil,
			func(t *testing.T) { want(t, "waiting", s.Job.WaitingSince, t0.Add(time.Minute)) }},
		{"w4 returns", func() Command { return &RegisterWorker{ID: "w4", RingAddr: "a4", Time: t0} }, nil,
			func(t *testing.T) {
				want(t, "waiting", s.Job.WaitingSince.IsZero(), true)
				want(t, "restore", BuildAssignment(s, "w4", &orderCache{}).GetRestore().GetDigest(), digestOf("d1"))
			}},
		{"wrong from-phase", func() Command { return &SetPhase{JobID: "j1", From: PhaseBaseline, To: PhaseDone} }, client.ErrWrongPhase, nil},
		{"fail", func() Command { return &SetPhase{JobID: "j1", From: PhasePretraining, To: PhaseFailed, Reason: "r"} }, nil,
			func(t *testing.T) { want(t, "reason", s.Job.FailureReason, "r") }},
		{"submit after the end", func() Command { return &SubmitJob{Job: Job{ID: "j2"}} }, nil, nil},
	}
	for _, st := range steps {
		before := s.Clone()
		_, err := st.cmd().apply(s)
		if !errors.Is(err, st.err) || (st.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.err)
		}
		if err != nil {
			wantJSON(t, st.name+": refused command changed the state", s, before)
		}
		if st.check != nil {
			t.Run(st.name, st.check)
		}
	}
}

// TestResplitExactlyOnce completes some steps with 3 workers, removes one
// and checks the survivors' assignments cover exactly the remaining images
// of the epoch, each once.
func TestResplitExactlyOnce(t *testing.T) {
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(95, 10, 1)})
	for i, w := range []string{"a", "b", "c"} {
		mustApply(t, s, &RegisterWorker{ID: w, RingAddr: w + ":1", Time: t0.Add(time.Duration(i))})
	}
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(95), Time: t0})
	for step := range 4 {
		mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: step})
	}
	g := s.Generation
	mustApply(t, s, &RemoveWorkers{IDs: []string{"b"}, Time: t0})
	if s.Generation != g+1 {
		t.Fatalf("generation %d after a removal, want %d", s.Generation, g+1)
	}
	plan := job.PlanEpoch(ids(95), 9, 0, 10)
	var wantIDs, got []int
	for step := 4; step < plan.Steps(); step++ {
		wantIDs = append(wantIDs, plan.Batch(step)...)
	}
	for _, w := range s.Ring {
		a := BuildAssignment(s, w, &orderCache{})
		if a.GetStartStep() != 4 || len(a.GetSteps()) != plan.Steps()-4 {
			t.Fatalf("%s: start %d with %d steps", w, a.GetStartStep(), len(a.GetSteps()))
		}
		for _, st := range a.GetSteps() {
			for _, id := range st.GetImageIds() {
				got = append(got, int(id))
			}
		}
	}
	sort.Ints(wantIDs)
	sort.Ints(got)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("re-split covers %d images, want exactly the %d remaining once", len(got), len(wantIDs))
	}
}

// TestEpochEndAndFinalCheckpoint runs an epoch to its end: the end-of-epoch
// checkpoint is stored as step 0 of the next epoch.
func TestEpochEndAndFinalCheckpoint(t *testing.T) {
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(16, 8, 1)})
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0})
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(16), Time: t0})
	mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 0})
	mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 1})
	if !s.Job.PretrainDone() || s.Job.FinalCheckpoint() {
		t.Fatalf("after all steps: done %v final %v", s.Job.PretrainDone(), s.Job.FinalCheckpoint())
	}
	mustApply(t, s, &CommitCheckpoint{JobID: "j1", Generation: s.Generation, Checkpoint: Checkpoint{Digest: digestOf("f"), Epoch: 0, Step: 2}})
	if c := s.Job.Checkpoint; c.Epoch != 1 || c.Step != 0 || !s.Job.FinalCheckpoint() {
		t.Fatalf("final checkpoint at %d/%d (final %v), want 1/0", c.Epoch, c.Step, s.Job.FinalCheckpoint())
	}
}

func mustApply(t *testing.T, s *State, c Command) {
	t.Helper()
	if _, err := c.apply(s); err != nil {
		t.Fatalf("apply %s: %v", c.kind(), err)
	}
}

func want[T any](t *testing.T, what string, got, w T) {
	t.Helper()
	wantJSON(t, what, got, w)
}

// TestCheckpointOneStepAhead: rank 0 checkpoints right after applying a step
// that its ring has not reported yet; the checkpoint is accepted, and a
// rollback to it moves progress forward to its position and records the
// step from the checkpoint's own metric of it (its report never came), so
// the epoch still counts it. Without that metric the epoch would lose the
// step, or, for its last one, its statistic (issue 35: a run interrupted
// with Ctrl-C and resumed reported another pretext history).
func TestCheckpointOneStepAhead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		metric bool
	}{{"with the step's metric", true}, {"from an older worker, without it", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			mustApply(t, s, &SubmitJob{Job: testJob(16, 8, 2)})
			mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0})
			mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(16), Time: t0})
			mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 0,
				Metric: StepMetric{Loss: 2, Accuracy: 0.25, Samples: 8}})
			// The last step (1) is applied but not reported: the checkpoint at
			// the end of the epoch is one step ahead.
			ck := &CommitCheckpoint{JobID: "j1", Generation: s.Generation, Checkpoint: Checkpoint{Digest: digestOf("f"), Epoch: 0, Step: 2}}
			if tc.metric {
				ck.LastStep = &StepMetric{Epoch: 0, Step: 1, Loss: 1, Accuracy: 0.75, Samples: 8}
			}
			mustApply(t, s, ck)
			if s.Job.Epoch != 0 || s.Job.NextStep != 1 || len(s.Job.History) != 0 {
				t.Fatalf("a checkpoint moved progress: epoch %d step %d history %v", s.Job.Epoch, s.Job.NextStep, s.Job.History)
			}
			mustApply(t, s, &RemoveWorkers{IDs: []string{"a"}, Time: t0})
			if s.Job.Epoch != 1 || s.Job.NextStep != 0 || !s.Job.Resume {
				t.Fatalf("after losing every worker: epoch %d step %d resume %v, want the checkpoint's 1/0", s.Job.Epoch, s.Job.NextStep, s.Job.Resume)
			}
			if !tc.metric {
				if len(s.Job.History) != 0 {
					t.Errorf("history %v without the step's metric", s.Job.History)
				}
				return
			}
			if len(s.Job.History) != 1 || s.Job.History[0].Steps != 2 || s.Job.History[0].Loss != 1.5 || s.Job.History[0].Accuracy != 0.5 {
				t.Fatalf("epoch 0 after the rollback: %+v, want both steps: loss 1.5, accuracy 0.5", s.Job.History)
			}
			if s.Job.Checkpoint.Ahead != nil {
				t.Error("the checkpoint still holds the metric of a recorded step")
			}
		})
	}
}

// TestCheckpointAheadClearedByReport: the step's own report, arriving after
// the checkpoint, records it; a later rollback does not record it twice.
func TestCheckpointAheadClearedByReport(t *testing.T) {
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(32, 8, 2)})
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0})
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(32), Time: t0})
	mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 0, Metric: StepMetric{Samples: 8}})
	mustApply(t, s, &CommitCheckpoint{JobID: "j1", Generation: s.Generation, Checkpoint: Checkpoint{Digest: digestOf("c"), Step: 2},
		LastStep: &StepMetric{Epoch: 0, Step: 1, Samples: 8}})
	if s.Job.Checkpoint.Ahead == nil {
		t.Fatal("a checkpoint one step ahead did not keep its step's metric")
	}
	mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 1, Metric: StepMetric{Samples: 8}})
	if s.Job.Checkpoint.Ahead != nil {
		t.Fatal("the step's report did not clear the checkpoint's copy")
	}
	mustApply(t, s, &RemoveWorkers{IDs: []string{"a"}, Time: t0})
	if n := len(s.Job.Metrics); n != 2 {
		t.Errorf("%d step records after the rollback, want 2", n)
	}
}

// TestRegisterIncarnation: the same incarnation re-registering is a no-op;
// a new one is a restart that loses the synced status.
func TestRegisterIncarnation(t *testing.T) {
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(16, 8, 1)})
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "i1", Time: t0})
	mustApply(t, s, &RegisterWorker{ID: "b", RingAddr: "b:1", Incarnation: "i1", Time: t0.Add(1)})
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(16), Time: t0})
	mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 0})
	g := s.Generation
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "i1", Time: t0})
	if s.Generation != g || len(s.Synced) != 2 {
		t.Fatalf("retry: generation %d (was %d), synced %v", s.Generation, g, s.Synced)
	}
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "i2", Time: t0})
	if s.Generation != g+1 || !slices.Equal(s.Synced, []string{"b"}) || !slices.Equal(s.Ring, []string{"b", "a"}) {
		t.Fatalf("restart: generation %d, synced %v, ring %v", s.Generation, s.Synced, s.Ring)
	}
}

// TestPretextHistory: every completed epoch gets the means of its steps'
// loss and accuracy; a rollback drops the epochs that will be trained
// again, and the redone steps replace the earlier records.
func TestPretextHistory(t *testing.T) {
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(16, 8, 3)})
	mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0})
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(16), Time: t0})
	done := func(epoch, step int, loss, acc float32) {
		t.Helper()
		mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Epoch: epoch, Step: step,
			Metric: StepMetric{Loss: loss, Accuracy: acc}})
	}
	done(0, 0, 1, 0.25)
	done(0, 1, 3, 0.75)
	mustApply(t, s, &CommitCheckpoint{JobID: "j1", Generation: s.Generation, Checkpoint: Checkpoint{Digest: digestOf("e0"), Epoch: 1, Step: 0}})
	done(1, 0, 5, 0.5)
	done(1, 1, 7, 0.5)
	want(t, "history after 2 epochs", s.Job.History, []EpochMetric{{Epoch: 0, Steps: 2, Loss: 2, Accuracy: 0.5}, {Epoch: 1, Steps: 2, Loss: 6, Accuracy: 0.5}})
	mustApply(t, s, &RemoveWorkers{IDs: []string{"a"}, Time: t0}) // rollback to the checkpoint at 1/0
	want(t, "history after the rollback", s.Job.History, []EpochMetric{{Epoch: 0, Steps: 2, Loss: 2, Accuracy: 0.5}})
	mustApply(t, s, &RegisterWorker{ID: "b", RingAddr: "b:1", Time: t0})
	done(1, 0, 9, 1)
	done(1, 1, 11, 1)
	want(t, "history after epoch 1 again", s.Job.History, []EpochMetric{{Epoch: 0, Steps: 2, Loss: 2, Accuracy: 0.5}, {Epoch: 1, Steps: 2, Loss: 10, Accuracy: 1}})
}

// TestSubmitRetryGetsRunningJob: while a job runs, submitting the same
// configuration again (a client retrying a lost answer) names the running
// job; another configuration is refused; once the job ended, the same
// configuration starts a new job.
func TestSubmitRetryGetsRunningJob(t *testing.T) {
	s := NewState()
	first := testJob(16, 8, 1)
	first.ConfigSHA256 = "aa"
	mustApply(t, s, &SubmitJob{Job: first})
	retry := first
	retry.ID = "j1-retry"
	if res, err := (&SubmitJob{Job: retry}).apply(s); err != nil || res.JobID != "j1" || s.Job.ID != "j1" {
		t.Fatalf("retried submit: result %+v, error %v, current job %s; want j1 unchanged", res, err, s.Job.ID)
	}
	other := first
	other.ID, other.ConfigSHA256 = "j2", "bb"
	if _, err := (&SubmitJob{Job: other}).apply(s); !errors.Is(err, client.ErrJobRunning) {
		t.Fatalf("submit of another configuration: %v, want client.ErrJobRunning", err)
	}
	s.Job.Phase = PhaseDone
	mustApply(t, s, &SubmitJob{Job: retry})
	want(t, "job after the first ended", s.Job.ID, "j1-retry")
}

// TestLeftSyncedRejoins: a synced worker that leaves and registers again
// with the same incarnation before another step completes (a worker forcing
// a new generation after a stalled link) still holds the current weights:
// when the other synced worker's lease then expires, the job goes on
// instead of rolling back. After a step, or with a new incarnation, it
// does not count as synced.
func TestLeftSyncedRejoins(t *testing.T) {
	start := func(t *testing.T) *State {
		s := NewState()
		mustApply(t, s, &SubmitJob{Job: testJob(16, 4, 2)})
		mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "ia", Time: t0})
		mustApply(t, s, &RegisterWorker{ID: "b", RingAddr: "b:1", Incarnation: "ib", Time: t0.Add(1)})
		mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(16), Time: t0})
		for step := range 3 {
			mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: step})
		}
		mustApply(t, s, &RemoveWorkers{IDs: []string{"a"}, Reason: "leave", Time: t0})
		return s
	}
	t.Run("same process rejoins", func(t *testing.T) {
		s := start(t)
		mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "ia", Time: t0})
		mustApply(t, s, &RemoveWorkers{IDs: []string{"b"}, Reason: "lease expired", Time: t0})
		want(t, "synced", s.Synced, []string{"a"})
		if s.Job.NextStep != 3 || s.Job.Resume {
			t.Fatalf("next step %d resume %v, want 3 without a rollback", s.Job.NextStep, s.Job.Resume)
		}
	})
	t.Run("a step completed meanwhile", func(t *testing.T) {
		s := start(t)
		mustApply(t, s, &StepDone{JobID: "j1", Generation: s.Generation, Step: 3})
		mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "ia", Time: t0})
		want(t, "synced", s.Synced, []string{"b"})
	})
	t.Run("restarted process", func(t *testing.T) {
		s := start(t)
		mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Incarnation: "ia2", Time: t0})
		mustApply(t, s, &RemoveWorkers{IDs: []string{"b"}, Reason: "lease expired", Time: t0})
		if !s.Job.Resume {
			t.Fatal("a restarted worker counted as holding the weights")
		}
	})
}

// TestJointAssignment checks the joint mode's assignment: each step's
// labeled parts over the ranks are job.LabeledBatch of the labeled images,
// in rank order, each with its class, and the assignment names the
// class count; a start whose labeled images and classes disagree is
// refused.
func TestJointAssignment(t *testing.T) {
	s := NewState()
	j := testJob(40, 8, 1)
	j.Params.LabeledBatch = 5
	mustApply(t, s, &SubmitJob{Job: j})
	for i, w := range []string{"a", "b", "c"} {
		mustApply(t, s, &RegisterWorker{ID: w, RingAddr: w + ":1", Time: t0.Add(time.Duration(i))})
	}
	labeled, classes := []int{3, 7, 11, 19, 23, 31}, []int{0, 1, 2, 0, 1, 2}
	bad := &StartPretraining{JobID: "j1", TrainIDs: ids(40), LabeledIDs: labeled, LabeledClasses: classes[:2], Classes: 3, Time: t0}
	if _, err := bad.apply(s.Clone()); !errors.Is(err, client.ErrBadJob) {
		t.Fatalf("6 labeled images with 2 classes: %v, want ErrBadJob", err)
	}
	mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(40), LabeledIDs: labeled, LabeledClasses: classes, Classes: 3, Time: t0})
	steps := job.NumSteps(40, 8)
	got := make([][]int, steps)
	for _, w := range s.Ring {
		a := BuildAssignment(s, w, &orderCache{})
		if a.GetClasses() != 3 || len(a.GetSteps()) != steps {
			t.Fatalf("%s: %d classes, %d steps", w, a.GetClasses(), len(a.GetSteps()))
		}
		for i, st := range a.GetSteps() {
			if st.GetLabeledGlobalCount() != 5 || len(st.GetLabeledIds()) != len(st.GetLabeledClasses()) {
				t.Fatalf("%s step %d: %d of %d labeled, %d classes", w, i, len(st.GetLabeledIds()), st.GetLabeledGlobalCount(), len(st.GetLabeledClasses()))
			}
			for k, id := range st.GetLabeledIds() {
				if want := classes[slices.Index(labeled, int(id))]; int(st.GetLabeledClasses()[k]) != want {
					t.Fatalf("%s step %d: image %d has class %d, want %d", w, i, id, st.GetLabeledClasses()[k], want)
				}
				got[i] = append(got[i], int(id))
			}
		}
	}
	for step := range steps {
		if want := job.LabeledBatch(labeled, 9, 0, step, steps, 5); !slices.Equal(got[step], want) {
			t.Errorf("step %d: the ranks' labeled parts are %v, want the plan's %v", step, got[step], want)
		}
	}
}
