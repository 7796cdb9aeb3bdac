package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard"
)

func TestAssignmentFromWire(t *testing.T) {
	r := &pb.GetAssignmentResponse{
		JobId: "j", ConfigJson: []byte("{}"), Phase: pb.Phase_PHASE_PRETRAINING, Generation: 7,
		Members: []string{"a:1", "b:2"}, Rank: 1, Epoch: 2, TotalEpochs: 5, StartStep: 3, TotalSteps: 9,
		NormMean: []float32{0.1, 0.2, 0.3}, NormStd: []float32{0.4, 0.5, 0.6}, ManifestDigest: "m",
		Restore: &pb.Checkpoint{Digest: "d", Epoch: 2, Step: 2}, Resume: true, CheckpointInterval: 4,
		Steps: []*pb.StepShard{{Step: 3, ImageIds: []int32{5, 6}, GlobalCount: 4}, {Step: 4, ImageIds: []int32{9}, GlobalCount: 3}},
	}
	a := assignmentFrom(r)
	want := Assignment{JobID: "j", ConfigJSON: []byte("{}"), Phase: pb.Phase_PHASE_PRETRAINING, Generation: 7,
		Members: []string{"a:1", "b:2"}, Rank: 1, Epoch: 2, TotalEpochs: 5, StartStep: 3, TotalSteps: 9,
		Mean: [3]float32{0.1, 0.2, 0.3}, Std: [3]float32{0.4, 0.5, 0.6}, ManifestDigest: "m",
		Resume: true, RestoreDigest: "d", CheckpointEvery: 4,
		Steps: []StepWork{{Step: 3, IDs: []int{5, 6}, Global: 4}, {Step: 4, IDs: []int{9}, Global: 3}}}
	if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", want) {
		t.Errorf("assignmentFrom =\n%+v\nwant\n%+v", a, want)
	}
}

// fetcher serves the embedded set's bytes by dataset index.
type fetcher struct {
	set   *shard.Dataset
	src   shard.MemSource
	calls [][]int
}

func (f *fetcher) FetchImages(_ context.Context, ids []int) (map[int][]byte, error) {
	f.calls = append(f.calls, slices.Clone(ids))
	out := map[int][]byte{}
	for _, id := range ids {
		out[id] = f.src[f.set.Items[id].Path]
	}
	return out, nil
}

// TestRemoteSourceMatchesLocal checks that images fetched as bytes from
// the coordinator decode to the same pixels as the locally loaded set, and
// are fetched once.
func TestRemoteSourceMatchesLocal(t *testing.T) {
	c, d := tinyJob(t)
	src, err := shard.EmbeddedSource()
	if err != nil {
		t.Fatal(err)
	}
	f := &fetcher{set: d.Set, src: src}
	r := shard.NewStream(shard.StreamConfig{Source: coordSource{fetch: f}, Size: c.Data.ImageSize, CacheBytes: DefaultImageCache, Threads: 2})
	ids := []int{d.Split.Train[3], d.Split.Train[0], d.Split.Train[7]}
	for range 2 {
		got, idx, err := r.Images(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for k, id := range ids {
			if !slices.Equal(got.Image(idx[k]), d.Set.Image(id)) {
				t.Errorf("image %d: fetched pixels differ from the local ones", id)
			}
		}
	}
	if len(f.calls) != 1 {
		t.Errorf("%d fetches, want 1 (the second call is served from memory)", len(f.calls))
	}
}

func TestLocalSourceChecksManifest(t *testing.T) {
	c, d := tinyJob(t)
	f := &netFactory{mode: DataLocal, data: map[string]*job.Data{job.Digest(c): d}}
	if _, err := f.source(context.Background(), c, d.ManifestDigest); err != nil {
		t.Fatalf("matching manifest: %v", err)
	}
	if _, err := f.source(context.Background(), c, "0123"); !errors.Is(err, ErrManifest) {
		t.Fatalf("other manifest: %v, want ErrManifest", err)
	}
	if _, _, err := (localSource{set: d.Set}).Images(context.Background(), []int{d.Set.Len()}); err == nil {
		t.Error("an id past the dataset was accepted")
	}
}

// TestNetReplicaCheckpointRoundTrip restores a trained replica's checkpoint
// into a fresh one: weights, BatchNorm state, optimizer state and position
// come back exactly; another job's checkpoint is refused.
func TestNetReplicaCheckpointRoundTrip(t *testing.T) {
	c, d := tinyJob(t)
	a := Assignment{ConfigJSON: c.JSON(), ManifestDigest: d.ManifestDigest, Mean: d.Norm.Mean, Std: d.Norm.Std}
	f := &netFactory{mode: DataLocal, threads: 1, data: map[string]*job.Data{job.Digest(c): d}}
	ctx := context.Background()
	r1, err := f.NewReplica(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	fresh := r1.OptState()
	if len(fresh) != len(r1.Params())+1 {
		t.Fatalf("optimizer state of %d values before a step, want %d", len(fresh), len(r1.Params())+1)
	}
	st := StepWork{Step: 0, IDs: d.Split.Train[:4], Global: 4}
	if _, err := r1.ComputeGrads(ctx, nil, nil, st, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := r1.Apply(0, 0, 3); err != nil {
		t.Fatal(err)
	}
	b, err := r1.Checkpoint(job.Position{Epoch: 0, Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.NewReplica(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := r2.Restore(b)
	if err != nil {
		t.Fatal(err)
	}
	if pos != (job.Position{Epoch: 0, Step: 1}) {
		t.Errorf("restored position %+v", pos)
	}
	sameReplicas(t, r1, map[string]Replica{"restored": r2}, 0)
	other := c
	other.Seed++
	r3, err := f.NewReplica(ctx, Assignment{ConfigJSON: other.JSON(), Mean: d.Norm.Mean, Std: d.Norm.Std})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r3.Restore(b); !errors.Is(err, model.ErrCheckpoint) {
		t.Errorf("restoring another job's checkpoint: %v, want ErrCheckpoint", err)
	}
	if err := r2.SetOptState(fresh); err != nil {
		t.Errorf("setting a fresh optimizer state: %v", err)
	}
}

// TestRetryFinal: only the final checkpoint of pretraining is retried
// (nothing supersedes it), and not once the coordinator refused it for
// good or the worker stops.
func TestRetryFinal(t *testing.T) {
	a := Assignment{TotalEpochs: 3}
	live, stopped := context.Background(), func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
	disk := errors.New("rpc error: code = Internal desc = write blob: no space left on device")
	tests := []struct {
		name string
		ctx  context.Context
		pos  job.Position
		err  error
		want bool
	}{
		{"final, disk full", live, job.Position{Epoch: 3}, disk, true},
		{"not final", live, job.Position{Epoch: 2, Step: 4}, disk, false},
		{"stopping", stopped, job.Position{Epoch: 3}, disk, false},
		{"new generation", live, job.Position{Epoch: 3}, fmt.Errorf("commit: %w", cluster.ErrStaleGeneration), false},
		{"lease lost", live, job.Position{Epoch: 3}, fmt.Errorf("commit: %w", client.ErrUnknownWorker), false},
		{"other phase", live, job.Position{Epoch: 3}, fmt.Errorf("commit: %w", client.ErrWrongPhase), false},
	}
	for _, tt := range tests {
		if got := retryFinal(tt.ctx, a, tt.pos, tt.err); got != tt.want {
			t.Errorf("%s: retryFinal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDefaultAdvertise(t *testing.T) {
	addrs := func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("127.0.0.1")}, &net.IPNet{IP: net.ParseIP("fe80::1")},
			&net.IPNet{IP: net.ParseIP("172.18.0.5")}}, nil
	}
	tests := []struct{ listen, want string }{
		{"127.0.0.1:7410", "127.0.0.1:7410"},
		{"10.0.0.2:7410", "10.0.0.2:7410"},
		{"0.0.0.0:7410", "172.18.0.5:7410"},
		{"[::]:7410", "172.18.0.5:7410"},
		{"w1.workers:7410", "w1.workers:7410"},
	}
	for _, tt := range tests {
		if got := defaultAdvertise(tt.listen, addrs); got != tt.want {
			t.Errorf("defaultAdvertise(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
	none := func() ([]net.Addr, error) { return []net.Addr{&net.IPNet{IP: net.ParseIP("127.0.0.1")}}, nil }
	if got := defaultAdvertise("0.0.0.0:7410", none); got != "0.0.0.0:7410" {
		t.Errorf("without an interface address: %q, want the listener's", got)
	}
}
