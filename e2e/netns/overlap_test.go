package netns

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// BenchmarkOverlapTBF measures what summing gradient buckets during
// backward buys on slow links: 4 workers (one network namespace each, every
// link limited by tc tbf to WHORL_TBF_RATE, default 1gbit, see shapeLink) pretrain
// WHORL_OVERLAP_MODEL (default resnet18) at 64 px on the photos in
// WHORL_FLOWERS (default ../../../shared/data/flowers), once with
// pretrain.grad_bucket_mib 0 (one all-reduce after backward) and once with
// WHORL_OVERLAP_BUCKET_MIB buckets (default the presets'), then with those
// buckets in bfloat16, each in a fresh cluster. Reported per mode: the
// median step, and from the workers' metrics the mean step and the mean
// all-reduce wait after backward; without buckets, step - wait is the
// compute and wait the communication, so max of the two is the ideal step
// and "hidden-%" is the share of the hideable time (min of the two) that
// buckets removed. Run as root:
//
//	WHORL_E2E_NETNS=require go test -run '^$' -bench OverlapTBF -benchtime 1x -timeout 30m ./e2e/netns
func BenchmarkOverlapTBF(b *testing.B) {
	Require(b)
	dir := flowersDir(b)
	bucket := job.DefaultGradBucketMiB
	if v := os.Getenv("WHORL_OVERLAP_BUCKET_MIB"); v != "" {
		var err error
		if bucket, err = strconv.Atoi(v); err != nil {
			b.Fatalf("WHORL_OVERLAP_BUCKET_MIB=%q: %v", v, err)
		}
	}
	for i := 0; i < b.N; i++ {
		off := measureOverlap(b, fmt.Sprintf("o%d", 3*i), dir, 0, false)
		on := measureOverlap(b, fmt.Sprintf("o%d", 3*i+1), dir, bucket, false)
		bf := measureOverlap(b, fmt.Sprintf("o%d", 3*i+2), dir, bucket, true)
		compute, comm := off.step-off.wait, off.wait
		ideal := max(compute, comm)
		hidden := 100 * (off.step - on.step) / min(compute, comm)
		b.Logf("round %d: without buckets step %.0f ms (median %.0f; compute %.0f, all-reduce %.0f); "+
			"%d MiB buckets step %.0f ms (median %.0f; wait after backward %.0f); ideal %.0f ms; hidden %.0f%% of %.0f ms; "+
			"bfloat16 buckets step %.0f ms (median %.0f; wait %.0f)",
			i, off.step, off.median, compute, comm, bucket, on.step, on.median, on.wait, ideal, hidden, min(compute, comm),
			bf.step, bf.median, bf.wait)
		b.ReportMetric(off.step, "ms/step-serial")
		b.ReportMetric(on.step, "ms/step-overlap")
		b.ReportMetric(bf.step, "ms/step-bf16")
		b.ReportMetric(ideal, "ms/step-ideal")
		b.ReportMetric(hidden, "hidden-%")
	}
}

// flowersDir is the photo folder of the benchmark, or it skips.
func flowersDir(b *testing.B) string {
	dir := os.Getenv("WHORL_FLOWERS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "data", "flowers")
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		b.Skipf("no flowers photos at %s (set WHORL_FLOWERS): %v", dir, err)
	}
	return abs
}

// overlapRun is one mode's measurement, in milliseconds.
type overlapRun struct{ step, wait, median float64 }

// measureOverlap runs one cluster with gradient buckets of bucketMiB (0:
// none) and measures steps 3..13 of the first epoch, then stops it.
func measureOverlap(b *testing.B, tag, dir string, bucketMiB int, bf16 bool) overlapRun {
	c := newCluster(b, tag, 1, 4, -1, 0)
	defer c.kill()
	rate := os.Getenv("WHORL_TBF_RATE")
	if rate == "" {
		rate = "1gbit"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, w := range c.workers {
		shapeLink(ctx, b, w.host, rate)
	}
	r, stop := c.record(ctx, 100*time.Millisecond)
	defer stop()
	if err := c.call(ctx, func(ctx context.Context, cl *client.Client) error {
		_, err := cl.SubmitJob(ctx, overlapJob(b, dir, bucketMiB, bf16).JSON())
		return err
	}); err != nil {
		b.Fatalf("submit: %v", err)
	}
	at := func(step uint32) time.Time {
		if _, err := r.waitFor(10*time.Minute, fmt.Sprintf("step %d", step), func(s sample) bool {
			return s.phase == pb.Phase_PHASE_PRETRAINING && s.next >= step
		}); err != nil {
			b.Fatal(err)
		}
		return time.Now()
	}
	from := at(3)
	m0 := c.scrape(b)
	to := at(13)
	m1 := c.scrape(b)
	d := m1.minus(m0)
	return overlapRun{step: 1000 * d.step / d.steps, wait: 1000 * d.wait / d.steps, median: float64(r.medianStep(from, to).Milliseconds())}
}

// shapeLink limits the host's egress to rate with tbf; the queue behind it
// is WHORL_TBF_QUEUE: pfifo_fast (the default: Linux's default qdisc, whose
// bands follow the socket priority the ring sets per channel, so a control
// sum overtakes queued bucket bytes) or bfifo (one FIFO: a control message
// waits behind every queued bucket byte). fq_codel, sfq and prio are not
// built into these kernels.
func shapeLink(ctx context.Context, b *testing.B, h *Host, rate string) {
	queue := os.Getenv("WHORL_TBF_QUEUE")
	if queue == "" {
		queue = "pfifo_fast"
	}
	for _, args := range [][]string{
		{"qdisc", "replace", "dev", hostIf, "root", "handle", "1:", "tbf", "rate", rate, "burst", "512kb", "latency", "50ms"},
		{"qdisc", "replace", "dev", hostIf, "parent", "1:1", queue},
	} {
		if out, err := h.Output(ctx, "tc", args...); err != nil {
			b.Fatalf("tc %s on %s: %v\n%s", strings.Join(args, " "), h.Name, err, out)
		}
	}
}

// overlapJob is the benchmark's job: 64 px photos, 32 images per step.
func overlapJob(b *testing.B, dir string, bucketMiB int, bf16 bool) job.Config {
	c, err := job.Preset(job.PresetQuick)
	if err != nil {
		b.Fatal(err)
	}
	c.Model = job.ModelConfig{Name: os.Getenv("WHORL_OVERLAP_MODEL")}
	if c.Model.Name == "" {
		c.Model.Name = job.ModelResNet18
	}
	c.Data = job.DataConfig{Dir: dir, ImageSize: 64}
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch, c.Pretrain.GradBucketMiB, c.Pretrain.GradBF16 = 1, 32, bucketMiB, bf16
	c.Supervised.Epochs, c.CheckpointEvery = 1, 1000
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	return c
}

// kill stops every process of the cluster at once (its hosts go when the
// benchmark ends), so the next round has the cores to itself.
func (c *cluster) kill() {
	for _, n := range append(append([]*node{}, c.coords...), c.workers...) {
		_ = n.host.Kill(context.Background(), 9)
	}
}

// stepTotals sums the workers' step metrics.
type stepTotals struct{ steps, step, wait float64 }

func (a stepTotals) minus(b stepTotals) stepTotals {
	return stepTotals{a.steps - b.steps, a.step - b.step, a.wait - b.wait}
}

// scrape reads every worker's /metrics.
func (c *cluster) scrape(b *testing.B) stepTotals {
	var t stepTotals
	for _, w := range c.workers {
		m, err := readMetrics("http://" + w.addr(metricsPort) + "/metrics")
		if err != nil {
			b.Fatalf("metrics of %s: %v", w.id, err)
		}
		t.steps += m["whorl_worker_step_seconds_count"]
		t.step += m["whorl_worker_step_seconds_sum"]
		t.wait += m["whorl_worker_allreduce_wait_seconds_sum"]
	}
	return t
}

// readMetrics returns the unlabelled-by-name values of a Prometheus text
// page (labels dropped: each name appears once per worker).
func readMetrics(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		} else {
			name, rest, _ = strings.Cut(line, " ")
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
