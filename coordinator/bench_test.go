package coordinator

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStepDoneApply is the baseline of BenchmarkStepDoneRaft: the same
// StepDone commands applied to the plain state, without raft.
func BenchmarkStepDoneApply(b *testing.B) {
	s := NewState()
	for _, c := range []Command{&SubmitJob{Job: testJob(1024, 1, 1<<30)}, &RegisterWorker{ID: "w", RingAddr: "w:1", Time: t0},
		&StartPretraining{JobID: "j1", TrainIDs: ids(1024), Time: t0}} {
		if _, err := c.apply(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		c := &StepDone{JobID: "j1", Generation: s.Generation, Epoch: s.Job.Epoch, Step: s.Job.NextStep}
		if _, err := c.apply(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStepDoneRaft measures how many step completions per second one
// embedded coordinator commits through raft (bolt log, fsync per entry).
func BenchmarkStepDoneRaft(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Logger, cfg.Phases = testLogger(), &fakePhases{n: 1024}
	lc, err := StartLocal(b.TempDir(), 1, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := lc.Leader(ctx, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	n := lc.Node(0)
	if _, err := n.propose(ctx, &SubmitJob{Job: testJob(1024, 1, 1<<30)}); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.State().Job.Phase != PhasePretraining {
		if time.Now().After(deadline) {
			b.Fatal("pretraining did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		var c *StepDone
		n.fsm.View(func(s *State) {
			c = &StepDone{JobID: "j1", Generation: s.Generation, Epoch: s.Job.Epoch, Step: s.Job.NextStep}
		})
		if _, err := n.propose(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}
