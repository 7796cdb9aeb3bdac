package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestArtifactsCommand: fine-tuning's SetPhase records the artifacts, which
// keepDigests keeps with the checkpoints; a bad name is refused with the
// state unchanged; a new job's submission drops the previous job's.
func TestArtifactsCommand(t *testing.T) {
	d1, d2 := digestOf("report"), digestOf("weights")
	s := NewState()
	mustApply(t, s, &SubmitJob{Job: testJob(40, 8, 1)})
	s.Job.Phase = PhaseFinetuning
	s.Job.Checkpoints, s.Job.Checkpoint = []string{d2}, &Checkpoint{Digest: d2, Epoch: 1}
	for _, tc := range []struct {
		name string
		arts []Artifact
		err  error
	}{
		{"a path", []Artifact{{Name: "../report.json", Digest: d1}}, client.ErrBadRequest},
		{"a separator", []Artifact{{Name: "out/report.json", Digest: d1}}, client.ErrBadRequest},
		{"a name twice", []Artifact{{Name: "a", Digest: d1}, {Name: "a", Digest: d2}}, client.ErrBadRequest},
		{"not a digest", []Artifact{{Name: "a", Digest: "abc"}}, client.ErrBadRequest},
		{"good", []Artifact{{Name: "report.json", Digest: d1, Size: 6}, {Name: PretrainedArtifact, Digest: d2, Size: 7}}, nil},
	} {
		_, err := (&SetPhase{JobID: "j1", From: PhaseFinetuning, To: PhaseEvaluating, Artifacts: tc.arts}).apply(s)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if tc.err != nil && (s.Job.Phase != PhaseFinetuning || s.Job.Artifacts != nil) {
			t.Fatalf("%s: refused but the state changed: %s, %v", tc.name, s.Job.Phase, s.Job.Artifacts)
		}
	}
	want(t, "kept", s.keepDigests(), []string{d1, d2})
	if err := s.Job.check(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, &SetPhase{JobID: "j1", From: PhaseEvaluating, To: PhaseDone})
	want(t, "artifacts when done", len(s.Job.Artifacts), 2)
	j2 := testJob(40, 8, 1)
	j2.ID = "j2"
	mustApply(t, s, &SubmitJob{Job: j2})
	want(t, "kept after a new job", len(s.keepDigests()), 0)
}

// filePhases is fakePhases whose FineTune writes result files into dir
// (the fine-tuned weights larger than a chunk, so they stream in pieces)
// and lists them (ResultLister).
type filePhases struct {
	*fakePhases
	dir string
}

func (p *filePhases) FineTune(ctx context.Context, cfg []byte, pretrained, baseline []byte, h []job.EpochStat) ([]byte, error) {
	rep, err := p.fakePhases.FineTune(ctx, cfg, pretrained, baseline, h)
	if err != nil {
		return nil, err
	}
	weights := bytes.Repeat(append(slices.Clone(pretrained), 'f'), 2*client.ChunkSize/(len(pretrained)+1)+1)
	if err := os.WriteFile(filepath.Join(p.dir, "finetuned.safetensors"), weights, 0o644); err != nil {
		return nil, err
	}
	return rep, os.WriteFile(filepath.Join(p.dir, "report.json"), rep, 0o644)
}

func (p *filePhases) ResultFiles(_, _ []byte) (map[string]string, error) {
	return map[string]string{"finetuned.safetensors": filepath.Join(p.dir, "finetuned.safetensors"),
		"report.json": filepath.Join(p.dir, "report.json")}, nil
}

// TestResultArtifacts runs a job to the end on three coordinators whose
// Phases write result files: the finished job lists each file and the
// committed pretrained checkpoint with their digests, every blob is on a
// quorum when the job is done and on every node soon after, prune keeps
// them, a node that loses one fetches it again, and after the leader is
// stopped the new leader serves every artifact, byte for byte.
func TestResultArtifacts(t *testing.T) {
	phases := &filePhases{fakePhases: &fakePhases{n: 40}, dir: t.TempDir()}
	c := newCluster(t, 3, func(cfg *Config) { cfg.Phases = phases })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stop := heartbeater(t, cl, "w", 100*time.Millisecond)
	defer stop()
	runWorker(t, ctx, cl, "w", startPretraining(t, ctx, cl, "w", testConfig(t, 1, 16, 100)))
	var r *pb.FetchResultsResponse
	eventually(t, 30*time.Second, "the job to finish", func() bool {
		var err error
		r, err = cl.FetchResults(ctx, "")
		return err == nil && r.GetPhase() == pb.Phase_PHASE_DONE
	})
	arts := checkArtifactList(t, r, phases.dir)
	if held := nodesHolding(c, arts); slices.Min(held) < 2 {
		t.Errorf("copies of each artifact when the job is done: %v, want a quorum (2 of 3)", held)
	}
	eventually(t, 10*time.Second, "every node to hold every artifact", func() bool { return slices.Min(nodesHolding(c, arts)) == 3 })
	eventually(t, 10*time.Second, "every node to apply the artifacts", func() bool {
		for i := range c.size() {
			if j := c.node(i).State().Job; j == nil || len(j.Artifacts) != len(arts) {
				return false
			}
		}
		return true
	})
	for i := range c.size() { // with no grace: only the state protects them
		n := c.node(i)
		if err := n.blobs.Prune(n.State().keepDigests(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if held := nodesHolding(c, arts); slices.Min(held) != 3 {
		t.Errorf("after prune: copies %v, want 3 of each", held)
	}
	leader := c.waitLeader(10 * time.Second)
	follower := (leader + 1) % c.size()
	lost := arts[0].GetDigest()
	if err := os.Remove(filepath.Join(c.dataDir(follower), "blobs", lost)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the follower to fetch the lost artifact", func() bool { return c.node(follower).blobs.Has(lost) })
	c.stop(leader)
	next := c.waitLeader(20 * time.Second)
	only, _ := dialTest([]string{c.node(next).Addr()})
	defer only.Close()
	checkDownloads(t, ctx, only, arts, phases.dir)
}

// checkArtifactList checks the finished job's artifacts: the listed files
// with their digests and sizes, and the committed checkpoint.
func checkArtifactList(t *testing.T, r *pb.FetchResultsResponse, dir string) []*pb.Artifact {
	t.Helper()
	arts := r.GetArtifacts()
	var names []string
	for _, a := range arts {
		names = append(names, a.GetName())
		want := r.GetPretrained().GetDigest()
		if a.GetName() != PretrainedArtifact {
			b, err := os.ReadFile(filepath.Join(dir, a.GetName()))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			want = hex.EncodeToString(sum[:])
		}
		if a.GetDigest() != want || a.GetSize() == 0 {
			t.Errorf("artifact %s: digest %s of %d bytes, want %s", a.GetName(), a.GetDigest(), a.GetSize(), want)
		}
	}
	if !slices.Equal(names, []string{"finetuned.safetensors", PretrainedArtifact, "report.json"}) {
		t.Fatalf("artifacts %v", names)
	}
	var rep map[string]any
	if err := json.Unmarshal(r.GetReportJson(), &rep); err != nil {
		t.Fatal(err)
	}
	return arts
}

// nodesHolding counts, for each artifact, the running nodes whose blob
// store holds it.
func nodesHolding(c *tcluster, arts []*pb.Artifact) []int {
	out := make([]int, len(arts))
	for i, a := range arts {
		for j := range c.size() {
			if n := c.node(j); n != nil && n.blobs.Has(a.GetDigest()) {
				out[i]++
			}
		}
	}
	return out
}

// checkDownloads downloads every artifact with cl into a new folder and
// compares each file with its source (the committed checkpoint with the
// worker's upload, which the fake fine-tuning kept).
func checkDownloads(t *testing.T, ctx context.Context, cl *client.Client, arts []*pb.Artifact, src string) {
	t.Helper()
	dst := t.TempDir()
	for _, a := range arts {
		if fetched, err := cl.DownloadArtifact(ctx, dst, a); err != nil || !fetched {
			t.Fatalf("download %s: fetched %v, %v", a.GetName(), fetched, err)
		}
		got, err := os.ReadFile(filepath.Join(dst, a.GetName()))
		if err != nil {
			t.Fatal(err)
		}
		if a.GetName() == PretrainedArtifact {
			if uint64(len(got)) != a.GetSize() || !strings.HasPrefix(string(got), "w") {
				t.Errorf("%s: %d bytes, want the committed checkpoint's %d", a.GetName(), len(got), a.GetSize())
			}
			continue
		}
		if want, _ := os.ReadFile(filepath.Join(src, a.GetName())); !bytes.Equal(got, want) {
			t.Errorf("%s: downloaded %d bytes differ from the %d written", a.GetName(), len(got), len(want))
		}
	}
}
