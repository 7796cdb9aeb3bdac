package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
)

func digestOf(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// FuzzApplyEntry decodes arbitrary log entries and applies them to a state
// in pretraining: the state machine must refuse or apply, never panic, and
// keep its invariants (progress inside the epoch, ring = workers).
func FuzzApplyEntry(f *testing.F) {
	for _, c := range []Command{
		&StepDone{JobID: "j1", Generation: 2, Step: 0},
		&CommitCheckpoint{JobID: "j1", Generation: 2, Checkpoint: Checkpoint{Digest: digestOf("d"), Step: 1}},
		&RemoveWorkers{IDs: []string{"a"}},
		&RegisterWorker{ID: "b", RingAddr: "b:1"},
		&SetPhase{JobID: "j1", From: PhasePretraining, To: PhaseFailed},
		&SetPhase{JobID: "j1", From: PhasePretraining, To: PhaseBaseline, Artifacts: []Artifact{{Name: "report.json", Digest: digestOf("r"), Size: 1}}},
		&SetPhase{JobID: "j1", From: PhasePretraining, To: PhaseBaseline, Artifacts: []Artifact{{Name: "../x", Digest: digestOf("r")}}},
		&StartPretraining{JobID: "j1", TrainIDs: []int{1}},
		&SubmitJob{Job: testJob(20, 8, 2), Keep: 2},
	} {
		b, _ := EncodeCommand(c)
		f.Add(b)
	}
	f.Add([]byte(`{"k":"step","d":{"job_id":"j1","generation":2,"epoch":-5,"step":-1}}`))
	f.Add([]byte(`{"k":"checkpoint","d":{"job_id":"j1","generation":99,"checkpoint":{"epoch":1e9}}}`))
	f.Add([]byte(`{"k":"phase","d":{"from":"pretraining"}}`)) // no phase to go to
	f.Fuzz(func(t *testing.T, entry []byte) {
		s := NewState()
		mustApply(t, s, &SubmitJob{Job: testJob(20, 8, 2)})
		mustApply(t, s, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0})
		mustApply(t, s, &StartPretraining{JobID: "j1", TrainIDs: ids(20), Time: t0})
		c, err := DecodeCommand(entry)
		if err != nil {
			return
		}
		_, _ = c.apply(s)
		j := s.Job
		if j.Phase == PhasePretraining && (j.NextStep < 0 || j.NextStep >= j.StepsInEpoch() || j.Epoch < 0) {
			t.Fatalf("progress %d/%d outside the plan of %d steps", j.Epoch, j.NextStep, j.StepsInEpoch())
		}
		if ck := j.Checkpoint; ck != nil && (ck.Epoch < 0 || ck.Step < 0 || before(j.Epoch, j.NextStep+1, ck.Epoch, ck.Step)) {
			t.Fatalf("checkpoint %+v with progress %d/%d", ck, j.Epoch, j.NextStep)
		}
		if len(s.Ring) != len(s.Workers) {
			t.Fatalf("ring %v but workers %d", s.Ring, len(s.Workers))
		}
		if err := s.Check(); err != nil {
			t.Fatalf("an applied command broke an invariant a restored snapshot must keep: %v", err)
		}
	})
}

// FuzzRestore restores arbitrary snapshot bytes: the FSM refuses them or
// holds a state that keeps its invariants, which the leader's readers
// (assignments, epoch summaries) then use without panicking.
func FuzzRestore(f *testing.F) {
	s := NewState()
	for _, c := range []Command{&SubmitJob{Job: testJob(20, 8, 2)}, &RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0},
		&RegisterWorker{ID: "b", RingAddr: "b:1", Time: t0}, &StartPretraining{JobID: "j1", TrainIDs: ids(20), Time: t0},
		&StepDone{JobID: "j1", Generation: 2, Step: 0}} {
		_, _ = c.apply(s)
	}
	good, _ := json.Marshal(s)
	f.Add(good)
	f.Add([]byte(`{"job":{"id":"j2","phase":"pending","params":{"epochs":1,"global_batch":8}},"history":[{"id":"j1","phase":"done",` +
		`"artifacts":[{"name":"report.json","digest":"` + digestOf("r") + `","size":1}],"pretrained":{"digest":"` + digestOf("r") + `"}}]}`))
	f.Add([]byte(`{"workers":{"a":null},"ring":["a"]}`))
	f.Add([]byte(`{"workers":{},"ring":["ghost"]}`))
	f.Add([]byte(`{"job":{"id":"j","phase":"pretraining","params":{"epochs":1,"global_batch":0}}}`))
	f.Add([]byte(`{"job":{"id":"j","phase":"pretraining","params":{"epochs":2,"global_batch":4},"train_ids":[1,2],"epoch":0,"next_step":99}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsm := NewFSM()
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			return
		}
		fsm.View(func(s *State) {
			if err := s.Check(); err != nil {
				t.Fatalf("restored a state that breaks an invariant: %v", err)
			}
			for _, id := range s.Ring {
				_ = BuildAssignment(s, id, &orderCache{})
			}
			if s.Job != nil {
				_ = summarize(s.Job.Metrics, s.Job.Epoch)
			}
		})
	})
}
