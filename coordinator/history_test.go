package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// finishJob submits job id (keeping keep finished jobs) and ends it: done
// with one artifact of its own and its final checkpoint listed, or failed
// with a reason.
func finishJob(t *testing.T, s *State, id string, keep int, failed bool) {
	t.Helper()
	j := testJob(40, 8, 1)
	j.ID, j.ConfigSHA256 = id, digestOf("config "+id)
	mustApply(t, s, &SubmitJob{Job: j, Keep: keep})
	ck := digestOf("checkpoint " + id)
	s.Job.Epoch, s.Job.Checkpoint, s.Job.Checkpoints = 1, &Checkpoint{Digest: ck, Epoch: 1, Size: 5}, []string{ck}
	if failed {
		mustApply(t, s, &SetPhase{JobID: id, From: PhasePending, To: PhaseFailed, Reason: "cancelled by test", Time: t0})
		return
	}
	s.Job.Phase = PhaseFinetuning
	arts := []Artifact{{Name: "report.json", Digest: digestOf("report " + id), Size: 9}, {Name: PretrainedArtifact, Digest: ck, Size: 5}}
	mustApply(t, s, &SetPhase{JobID: id, From: PhaseFinetuning, To: PhaseEvaluating, Report: json.RawMessage(`{"job":"` + id + `"}`), Artifacts: arts, Time: t0})
	mustApply(t, s, &SetPhase{JobID: id, From: PhaseEvaluating, To: PhaseDone, Time: t0})
}

// historyIDs returns History's job ids, newest first.
func historyIDs(s *State) []string {
	var out []string
	for _, r := range s.History {
		out = append(out, r.ID)
	}
	return out
}

// TestHistoryCommand: each submission moves the finished job it replaces
// to the front of History, which keeps the newest Keep records (the
// submission's, so a smaller Keep drops older ones at once); keepDigests
// holds the kept records' artifacts and frees a dropped record's; results
// answers from History with the record's outcome.
func TestHistoryCommand(t *testing.T) {
	for _, tc := range []struct {
		keep int
		want []string // History after j1..j4 and the submission of j5
	}{
		{0, nil},
		{1, []string{"j4"}},
		{3, []string{"j4", "j3", "j2"}},
		{8, []string{"j4", "j3", "j2", "j1"}},
	} {
		t.Run(fmt.Sprint("keep ", tc.keep), func(t *testing.T) {
			s := NewState()
			for i := 1; i <= 4; i++ {
				finishJob(t, s, fmt.Sprintf("j%d", i), tc.keep, i == 3)
			}
			mustApply(t, s, &SubmitJob{Job: Job{ID: "j5", Params: JobParams{Epochs: 1, GlobalBatch: 8}}, Keep: tc.keep})
			want(t, "history", historyIDs(s), tc.want)
			for i := 1; i <= 4; i++ {
				id := fmt.Sprintf("j%d", i)
				kept := slices.Contains(tc.want, id)
				report, ck := digestOf("report "+id), digestOf("checkpoint "+id)
				if has := slices.Contains(s.keepDigests(), report); has != (kept && id != "j3") {
					t.Errorf("%s kept %v: keepDigests holds its report %v", id, kept, has)
				}
				if has := slices.Contains(s.keepDigests(), ck); has != (kept && id != "j3") {
					t.Errorf("%s kept %v: keepDigests holds its checkpoint (an artifact when done) %v", id, kept, has)
				}
				checkResults(t, s, id, kept, tc.keep)
			}
			if err := s.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkResults checks results(id) against what finishJob committed, or
// ErrNoJob naming keep when the job is not kept.
func checkResults(t *testing.T, s *State, id string, kept bool, keep int) {
	t.Helper()
	r, err := s.results(id, keep)
	if !kept {
		if !errors.Is(err, client.ErrNoJob) || !strings.Contains(err.Error(), fmt.Sprintf("the last %d finished", keep)) {
			t.Errorf("results of dropped %s: %v, want ErrNoJob naming the %d kept", id, err, keep)
		}
		return
	}
	if err != nil {
		t.Fatalf("results of %s: %v", id, err)
	}
	if id == "j3" {
		if r.GetPhase().Label() != "failed" || r.GetFailureReason() != "cancelled by test" || len(r.GetArtifacts()) != 0 || r.GetPretrained() != nil {
			t.Errorf("results of failed %s: %v", id, r)
		}
		return
	}
	if r.GetJobId() != id || r.GetPhase().Label() != "done" || string(r.GetReportJson()) != `{"job":"`+id+`"}` ||
		len(r.GetArtifacts()) != 2 || r.GetPretrained().GetDigest() != digestOf("checkpoint "+id) || r.GetPretrained().GetEpoch() != 1 {
		t.Errorf("results of %s: %v", id, r)
	}
}

// TestHistoryKeepChanges: a submission with a smaller Keep trims History at
// once, one out of 0..MaxKeepJobs is refused leaving the state unchanged,
// and a record under the new job's id is dropped (shadowed).
func TestHistoryKeepChanges(t *testing.T) {
	s := NewState()
	for i := 1; i <= 4; i++ {
		finishJob(t, s, fmt.Sprintf("j%d", i), 8, false)
	}
	want(t, "history", historyIDs(s), []string{"j3", "j2", "j1"})
	before := s.Clone()
	for _, keep := range []int{-1, MaxKeepJobs + 1} {
		_, err := (&SubmitJob{Job: Job{ID: "x"}, Keep: keep}).apply(s)
		if !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("keep %d: %v, want ErrBadRequest", keep, err)
		}
		wantJSON(t, fmt.Sprintf("state after keep %d", keep), s, before)
	}
	finishJob(t, s, "j2", 2, false) // j2's id again: its old record goes
	want(t, "history after j2 again with keep 2", historyIDs(s), []string{"j4", "j3"})
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryFSMDeterministic applies the same encoded entries on two FSMs
// (the Keep is in the entry, not in a node's config): their states are
// equal, and a snapshot of one restores into a third equal FSM.
func TestHistoryFSMDeterministic(t *testing.T) {
	var entries [][]byte
	s := NewState()
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("j%d", i)
		j := testJob(40, 8, 1)
		j.ID = id
		cmds := []Command{&SubmitJob{Job: j, Keep: 3}, &SetPhase{JobID: id, From: PhasePending, To: PhaseFailed, Reason: "r " + id, Time: t0}}
		for _, c := range cmds {
			b, err := EncodeCommand(c)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, b)
			mustApply(t, s, c)
		}
	}
	f, g := NewFSM(), NewFSM()
	for i, b := range entries {
		for _, m := range []*FSM{f, g} {
			if r := m.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}).(applyResponse); r.Err != nil {
				t.Fatalf("entry %d: %v", i, r.Err)
			}
		}
	}
	want(t, "history", historyIDs(f.state), []string{"j4", "j3", "j2"})
	wantJSON(t, "the second FSM", g.state, f.state)
	s.Index = f.state.Index
	wantJSON(t, "the state applied directly", s, f.state)
	h := NewFSM()
	if err := h.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, f)))); err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "restored", h.state, f.state)
}

// snapshotBytes persists a snapshot of f.
func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// TestHistoryRestore: a snapshot with History round-trips; one written
// before History (no field) restores with none; a History a state machine
// could not have produced is refused naming the record.
func TestHistoryRestore(t *testing.T) {
	s := NewState()
	for i := 1; i <= 3; i++ {
		finishJob(t, s, fmt.Sprintf("j%d", i), 8, false)
	}
	good, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]json.RawMessage
	if err := json.Unmarshal(good, &old); err != nil {
		t.Fatal(err)
	}
	delete(old, "history")
	noHistory, _ := json.Marshal(old)
	bad := func(edit func(r *JobRecord)) []byte {
		c := s.Clone()
		edit(&c.History[1])
		b, _ := json.Marshal(c)
		return b
	}
	for _, tc := range []struct {
		name    string
		snap    []byte
		history []string
		errHas  string
	}{
		{"with history", good, []string{"j2", "j1"}, ""},
		{"before history", noHistory, nil, ""},
		{"a hostile name", bad(func(r *JobRecord) { r.Artifacts[0].Name = "../report.json" }), nil, `history[1] job j1: artifacts[0]`},
		{"not a digest", bad(func(r *JobRecord) { r.Artifacts[1].Digest = "abc" }), nil, "history[1] job j1"},
		{"a running job", bad(func(r *JobRecord) { r.Phase = PhasePretraining }), nil, `history[1] job j1: phase "pretraining"`},
		{"an id twice", bad(func(r *JobRecord) { r.ID = "j2" }), nil, `history[1]: id "j2"`},
		{"the current job's id", bad(func(r *JobRecord) { r.ID = "j3" }), nil, `history[1]: id "j3"`},
		{"a pretrained checkpoint not kept", bad(func(r *JobRecord) { r.Pretrained.Digest = digestOf("x") }), nil, "history[1] job j1: pretrained"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.snap)))
			if tc.errHas != "" {
				if !errors.Is(err, ErrBadState) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("restore: %v, want ErrBadState naming %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want(t, "history", historyIDs(f.state), tc.history)
			if r, err := f.state.results("j1", 8); (err == nil) != (tc.history != nil) {
				t.Errorf("results of j1: %v, %v", r, err)
			}
			want(t, "current job", f.state.Job.ID, "j3")
		})
	}
}

// TestHistoryResults runs job A to done on three coordinators whose Phases
// write result files, keeping one finished job: after job B is submitted,
// FetchResults(A) still lists A's artifacts and every node keeps their
// blobs through a prune with no grace, so any coordinator serves them byte
// for byte, and a node that loses one fetches it again; once B is cancelled and C submitted, A drops out: FetchResults(A)
// fails with ErrNoJob naming the one job kept, and a prune frees A's blobs.
func TestHistoryResults(t *testing.T) {
	phases := &filePhases{fakePhases: &fakePhases{n: 40}, dir: t.TempDir()}
	c := newCluster(t, 3, func(cfg *Config) { cfg.Phases, cfg.KeepJobs = phases, 1 })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stop := heartbeater(t, cl, "w", 100*time.Millisecond)
	defer stop()
	runWorker(t, ctx, cl, "w", startPretraining(t, ctx, cl, "w", testConfig(t, 1, 16, 100)))
	var a *pb.FetchResultsResponse
	eventually(t, 30*time.Second, "job A to finish", func() bool {
		var err error
		a, err = cl.FetchResults(ctx, "")
		return err == nil && a.GetPhase() == pb.Phase_PHASE_DONE
	})
	idB, err := cl.SubmitJob(ctx, testConfig(t, 2, 16, 100))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cl.FetchResults(ctx, a.GetJobId())
	if err != nil || r.GetJobId() != a.GetJobId() || r.GetPhase() != pb.Phase_PHASE_DONE || !bytes.Equal(r.GetReportJson(), a.GetReportJson()) ||
		r.GetPretrained().GetDigest() != a.GetPretrained().GetDigest() {
		t.Fatalf("FetchResults(A) after B's submission: %v, %v; want A's as when it was current: %v", r, err, a)
	}
	arts := checkArtifactList(t, r, phases.dir)
	eventually(t, 10*time.Second, "every node to hold A's artifacts", func() bool { return slices.Min(nodesHolding(c, arts)) == 3 })
	pruneAll(t, c, func(s *State) bool { return s.Job.ID == idB })
	if held := nodesHolding(c, arts); slices.Min(held) != 3 {
		t.Errorf("A's artifacts after B's submission and a prune: copies %v, want 3 of each", held)
	}
	lost := arts[0].GetDigest()
	if err := os.Remove(filepath.Join(c.dataDir(1), "blobs", lost)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "node 1 to fetch A's lost artifact again", func() bool { return c.node(1).blobs.Has(lost) })
	for i := range c.size() { // any coordinator serves them
		one, _ := dialTest([]string{c.node(i).Addr()})
		checkDownloads(t, ctx, one, arts, phases.dir)
		one.Close()
	}

	if _, err := cl.CancelJob(ctx, idB); err != nil {
		t.Fatal(err)
	}
	idC, err := cl.SubmitJob(ctx, testConfig(t, 3, 16, 100))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.FetchResults(ctx, a.GetJobId())
	if !errors.Is(err, client.ErrNoJob) || !strings.Contains(err.Error(), "the last 1 finished") {
		t.Fatalf("FetchResults(A) after C's submission: %v, want ErrNoJob naming the 1 job kept", err)
	}
	if r, err := cl.FetchResults(ctx, idB); err != nil || r.GetPhase() != pb.Phase_PHASE_FAILED {
		t.Fatalf("FetchResults(B) after C's submission: %v, %v; want B, failed", r, err)
	}
	pruneAll(t, c, func(s *State) bool { return s.Job.ID == idC })
	if held := nodesHolding(c, arts); slices.Max(held) != 0 {
		t.Errorf("A's artifacts once A dropped out and a prune: copies %v, want none", held)
	}
}

// pruneAll waits until every node applied what applied says, then prunes
// each node's blobs with no grace (only its state protects them).
func pruneAll(t *testing.T, c *tcluster, applied func(s *State) bool) {
	t.Helper()
	eventually(t, 10*time.Second, "every node to apply the submission", func() bool {
		for i := range c.size() {
			if s := c.node(i).State(); s.Job == nil || !applied(s) {
				return false
			}
		}
		return true
	})
	for i := range c.size() {
		n := c.node(i)
		if err := n.blobs.Prune(n.State().keepDigests(), 0); err != nil {
			t.Fatal(err)
		}
	}
}
