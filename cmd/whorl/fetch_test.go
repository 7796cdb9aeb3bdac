package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

// TestFetchCommand runs a tiny job on a real coordinator (experiment.Runner
// writing into its --out) with a real worker, then: `whorl fetch`
// downloads every result file, each byte-identical to the coordinator's
// --out copy; a rerun keeps them all; a damaged file is fetched again; a
// job that is not done is refused; once the next job runs, --job fetches
// the finished one still, and a job not kept is refused with what to do.
func TestFetchCommand(t *testing.T) {
	coordOut := t.TempDir()
	lc, cl, id := finishedJob(t, coordOut)
	addr := lc.Addrs()[0]
	dst := filepath.Join(t.TempDir(), "results")
	out, err := runWhorl(t, "fetch", "--coordinator", addr, "--out", dst)
	if err != nil {
		t.Fatalf("whorl fetch: %v\n%s", err, out)
	}
	t.Logf("whorl fetch:\n%s", out)
	names := checkFetched(t, dst, coordOut)
	if summary := fmt.Sprintf("job %s: %d files", id, len(names)); !strings.Contains(out, summary) ||
		!strings.Contains(out, fmt.Sprintf("%d fetched, 0 already present", len(names))) {
		t.Errorf("output lacks the summary %q:\n%s", summary, out)
	}
	if err := os.WriteFile(filepath.Join(dst, experiment.FileReportMD), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runWhorl(t, "fetch", "--coordinator", addr, "--out", dst, "--job", id)
	if err != nil || !strings.Contains(out, fmt.Sprintf("1 fetched, %d already present", len(names)-1)) {
		t.Fatalf("rerun with a damaged report.md: %v\n%s", err, out)
	}
	checkFetched(t, dst, coordOut)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tinyFetchJob(t)
	c.Pretrain.Epochs++ // another job on the same data and split (the manifest in --out), waiting for a worker in pretraining
	if _, err := cl.SubmitJob(ctx, c.JSON()); err != nil {
		t.Fatal(err)
	}
	if _, err := runWhorl(t, "fetch", "--coordinator", addr, "--out", t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "not done") {
		t.Errorf("fetch of a running job = %v, want a refusal naming its phase", err)
	}
	older := filepath.Join(t.TempDir(), "older")
	if out, err := runWhorl(t, "fetch", "--coordinator", addr, "--out", older, "--job", id); err != nil {
		t.Fatalf("fetch of the previous job while the next runs: %v\n%s", err, out)
	}
	checkFetched(t, older, dst) // the first fetch's copy: the running job rewrote --out's config.json
	if _, err := runWhorl(t, "fetch", "--coordinator", addr, "--out", t.TempDir(), "--job", "job-00000000-1"); err == nil ||
		!strings.Contains(err.Error(), "the last 8 finished") || !strings.Contains(err.Error(), "--keep-jobs") {
		t.Errorf("fetch of a job not kept = %v, want a refusal naming the 8 finished jobs kept and --keep-jobs", err)
	}
}

// finishedJob runs a tiny job to the end on a one-node coordinator writing
// into coordOut and returns the cluster, a client and the job's id.
func finishedJob(t *testing.T, coordOut string) (*coordinator.LocalCluster, *client.Client, string) {
	t.Helper()
	base := coordinator.DefaultConfig()
	base.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	base.Phases = &experiment.Runner{OutDir: coordOut}
	base.AssignmentWait = 2 * time.Second
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := lc.Leader(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(lc.Addrs()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	stop := runTestWorker(t, lc.Addrs())
	defer stop()
	id, err := cl.SubmitJob(ctx, tinyFetchJob(t).JSON())
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := cl.FetchResults(ctx, id)
		if err == nil && r.GetPhase() == pb.Phase_PHASE_DONE {
			return lc, cl, id
		}
		if r.GetPhase() == pb.Phase_PHASE_FAILED || ctx.Err() != nil {
			t.Fatalf("the job did not finish: %v, %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tinyFetchJob is a job on a small photo folder, small enough for -race.
func tinyFetchJob(t *testing.T) job.Config {
	t.Helper()
	c := job.DefaultConfig()
	c.Data.Dir, c.Data.ImageSize = flowerFolder(t, 3, 12), 8
	c.Split = job.SplitConfig{TestFraction: 0.25, LabeledFraction: 0.5, ValidationFraction: 0.2}
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = 1, 8
	c.Supervised.Epochs, c.Supervised.Batch = 1, 8
	c.CheckpointEvery = 2
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// runTestWorker runs an in-process worker that reads the job's folder; the
// returned function stops it.
func runTestWorker(t *testing.T, coords []string) (stop func()) {
	t.Helper()
	cfg := worker.DefaultConfig()
	cfg.ID, cfg.Coordinators, cfg.Listen = "w0", coords, "127.0.0.1:0"
	cfg.Data, cfg.Threads, cfg.AssignmentWait = worker.DataLocal, 1, 2*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
}

// checkFetched compares every downloaded file with the coordinator's --out
// copy (the committed checkpoint, which --out does not hold, with its
// name's digest) and returns the names.
func checkFetched(t *testing.T, dst, coordOut string) []string {
	t.Helper()
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		got, err := os.ReadFile(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == coordinator.PretrainedArtifact {
			continue
		}
		if want, err := os.ReadFile(filepath.Join(coordOut, e.Name())); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes fetched differ from the %d in the coordinator's --out (%v)", e.Name(), len(got), len(want), err)
		}
	}
	for _, want := range []string{experiment.FileFinetuned, experiment.FilePretrained, experiment.FileBaselineCk, experiment.FileReport,
		experiment.FileReportMD, experiment.FileCurves, experiment.FileConfig, experiment.FileManifest, experiment.FileBaseline,
		coordinator.PretrainedArtifact} {
		if _, err := os.Stat(filepath.Join(dst, want)); err != nil {
			t.Errorf("not fetched: %v (have %v)", err, names)
		}
	}
	return names
}

// hostileCoordinator answers FetchResults with a done job whose artifacts
// it chooses, and serves data for every FetchCheckpoint.
type hostileCoordinator struct {
	pb.UnimplementedCoordinatorServiceServer
	arts []*pb.Artifact
	data []byte
}

func (h *hostileCoordinator) FetchResults(context.Context, *pb.FetchResultsRequest) (*pb.FetchResultsResponse, error) {
	return &pb.FetchResultsResponse{JobId: "job-x", Phase: pb.Phase_PHASE_DONE, Artifacts: h.arts}, nil
}

func (h *hostileCoordinator) FetchCheckpoint(req *pb.FetchCheckpointRequest, s grpc.ServerStreamingServer[pb.FetchCheckpointResponse]) error {
	if err := s.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Info{Info: &pb.Checkpoint{Digest: req.GetDigest()}}}); err != nil {
		return err
	}
	return s.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Chunk{Chunk: h.data}})
}

// TestFetchRefusesHostileCoordinator: names that would leave --out (or
// write one file twice) are refused before anything is written, and bytes
// that do not match their digest or size are an error naming the file and
// both digests that leaves no file, not even a temporary one.
func TestFetchRefusesHostileCoordinator(t *testing.T) {
	data := []byte("the weights")
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		arts   []*pb.Artifact
		errHas []string
	}{
		{"parent directory", []*pb.Artifact{{Name: "../escape.txt", Digest: good, Size: 11}}, []string{`"../escape.txt"`, "path separator"}},
		{"absolute path", []*pb.Artifact{{Name: "/tmp/escape.txt", Digest: good, Size: 11}}, []string{"path separator"}},
		{"a name twice", []*pb.Artifact{{Name: "a", Digest: good, Size: 11}, {Name: "a", Digest: good, Size: 11}}, []string{"listed twice"}},
		{"another digest", []*pb.Artifact{{Name: "w.safetensors", Digest: other, Size: 11}},
			[]string{"w.safetensors", good, other}},
		{"longer than said", []*pb.Artifact{{Name: "w.safetensors", Digest: good, Size: 4}}, []string{"w.safetensors", "more than its 4 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveHostile(t, &hostileCoordinator{arts: tc.arts, data: data})
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			_, err := runWhorl(t, "fetch", "--coordinator", addr, "--out", dst, "--timeout", "5s")
			for _, want := range tc.errHas {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("whorl fetch = %v, want an error naming %q", err, want)
				}
			}
			filepath.WalkDir(parent, func(path string, d os.DirEntry, _ error) error {
				if !d.IsDir() {
					t.Errorf("file left behind: %s", path)
				}
				return nil
			})
		})
	}
}

// serveHostile serves h on a loopback port until the test ends.
func serveHostile(t *testing.T, h *hostileCoordinator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterCoordinatorServiceServer(s, h)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}
