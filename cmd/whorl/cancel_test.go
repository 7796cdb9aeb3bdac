package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// TestCancelCommand: `whorl cancel` ends a real coordinator's job waiting
// for workers in pretraining, and is refused once the job is over.
func TestCancelCommand(t *testing.T) {
	base := coordinator.DefaultConfig()
	base.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	base.Phases = &experiment.Runner{OutDir: t.TempDir()}
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := lc.Leader(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg := client.DefaultConfig()
	cfg.Addrs = lc.Addrs()
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	quick, _ := job.Preset(job.PresetQuick)
	id, err := cl.SubmitJob(ctx, quick.JSON())
	if err != nil {
		t.Fatal(err)
	}
	for st, _ := cl.JobStatus(ctx); st.GetPhase().Label() != "pretraining"; st, _ = cl.JobStatus(ctx) {
		if ctx.Err() != nil {
			t.Fatal("the job never reached pretraining")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := runWhorl(t, "cancel", "--coordinator", lc.Addrs()[0])
	if err != nil || !strings.Contains(out, "job "+id+" cancelled (it was in pretraining)") {
		t.Fatalf("whorl cancel: %v\n%s", err, out)
	}
	r, err := cl.FetchResults(ctx, id)
	if err != nil || !strings.HasPrefix(r.GetFailureReason(), "cancelled by a plaintext client") {
		t.Fatalf("results after cancel: %v, %v", r, err)
	}
	if out, err := runWhorl(t, "cancel", "--coordinator", lc.Addrs()[0]); err == nil || !strings.Contains(err.Error(), "already failed") {
		t.Fatalf("second whorl cancel: %v\n%s", err, out)
	}
}
