package coordinator

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// runOnce starts a one-node coordinator on dir, waits until it serves and
// stops it; it returns Run's error when Run fails before serving.
func runOnce(t *testing.T, dir string) error {
	t.Helper()
	cfg := fastConfig(t, nil)
	cfg.ID, cfg.DataDir = "c0", dir
	cfg.RaftAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	n, err := New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("node neither served nor failed within 20 s")
	}
	cancel()
	return <-done
}

// TestDamagedRaftLog: a truncated or garbled raft.db is an error naming the
// file and the recovery within seconds, never a panic (bbolt panics on a
// bad freelist page).
func TestDamagedRaftLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"truncated to one page", func(b []byte) []byte { return b[:4096] }},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"garbled meta pages", func(b []byte) []byte {
			for i := 16; i < 2*4096 && i < len(b); i += 7 {
				b[i] ^= 0x5a
			}
			return b
		}},
		{"intact", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := runOnce(t, dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "raft.db")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.damage == nil { // the check passes an intact log
				if err := runOnce(t, dir); err != nil {
					t.Fatalf("restart on an intact raft log: %v", err)
				}
				return
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = runOnce(t, dir)
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
				t.Fatalf("start on a damaged raft log = %v, want ErrDamaged naming %s", err, path)
			}
		})
	}
}

// TestDamagedCheckpointFailsTheJob: the committed checkpoint's blob is
// truncated on the only coordinator's disk. Fetching it is refused as
// not found (the damaged file moved aside, never streamed), and the job
// fails within seconds with a reason naming the file, instead of workers
// retrying the fetch forever.
func TestDamagedCheckpointFailsTheJob(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, a := twoStepsDone(t, ctx, c, 2)
	ck, err := cl.CommitCheckpoint(ctx, &pb.CheckpointHeader{WorkerId: "w1", Generation: a.GetGeneration(), Epoch: 0, Step: 2},
		bytes.Repeat([]byte("weights!"), 10_000))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.dataDir(0), "blobs", ck.GetDigest())
	if err := os.Truncate(path, 1000); err != nil {
		t.Fatal(err)
	}
	damaged := time.Now()
	if _, _, err := cl.FetchCheckpoint(ctx, ""); !errors.Is(err, client.ErrBlobNotFound) {
		t.Fatalf("fetch of a damaged checkpoint = %v, want ErrBlobNotFound", err)
	}
	var st *pb.JobStatusResponse
	eventually(t, 10*time.Second, "the job failed", func() bool {
		st, err = cl.JobStatus(ctx)
		return err == nil && st.GetPhase() == pb.Phase_PHASE_FAILED
	})
	t.Logf("failed %v after the damage: %s", time.Since(damaged).Round(time.Millisecond), st.GetFailureReason())
	if r := st.GetFailureReason(); !strings.Contains(r, path+".damaged") || !strings.Contains(r, "no coordinator holds an intact copy") {
		t.Errorf("failure reason %q does not name %s and the cause", r, path)
	}
	if _, err := os.Stat(path + ".damaged"); err != nil {
		t.Errorf("the damaged blob was not kept aside: %v", err)
	}
}
