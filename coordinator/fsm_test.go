package coordinator

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

func wantJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestFSMSnapshotRestore applies encoded commands through the FSM, takes a
// snapshot, restores it into a fresh FSM and checks the states are equal
// and that the restored FSM keeps applying.
func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM()
	cmds := []Command{
		&SubmitJob{Job: testJob(30, 8, 2)},
		&RegisterWorker{ID: "a", RingAddr: "a:1", Time: t0},
		&Announce{ID: "c0", GRPCAddr: "127.0.0.1:1"},
		&StartPretraining{JobID: "j1", TrainIDs: ids(30), Mean: [3]float32{0.1, 0.2, 0.3}, Time: t0},
		&StepDone{JobID: "j1", Generation: 2, Step: 0, Metric: StepMetric{Loss: 1.5, Time: t0}},
		&StepDone{JobID: "j1", Generation: 1, Step: 1}, // refused: stale
	}
	for i, c := range cmds {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}).(applyResponse)
		if (resp.Err != nil) != (i == len(cmds)-1) {
			t.Fatalf("command %d (%s): err %v", i, c.kind(), resp.Err)
		}
	}
	if bad := f.Apply(&raft.Log{Index: 99, Type: raft.LogCommand, Data: []byte(`{"k":"nope"}`)}).(applyResponse); bad.Err == nil {
		t.Errorf("unknown command kind applied without error")
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	changed := g.Changed()
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Errorf("Restore did not wake waiters")
	}
	wantJSON(t, "restored state", g.state, f.state)
	b, _ := EncodeCommand(&StepDone{JobID: "j1", Generation: 2, Step: 1})
	if r := g.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: b}).(applyResponse); r.Err != nil || r.Result.NextStep != 2 {
		t.Fatalf("apply after restore: %+v", r)
	}
}
