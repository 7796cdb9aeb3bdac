package trainbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/gemm"
)

// Options are a benchmark's settings (`whorl bench train`'s flags).
type Options struct {
	// Arch is a rotnet.py network name (ModelNames).
	Arch string
	// Size is the input side; Batch the samples per step (a multiple of
	// 4: images x 4 rotations); Threads the engine's threads; Warmup the
	// untimed steps first.
	Size, Batch, Threads, Warmup int
	// Seconds is the least timed duration (and at least 5 steps).
	Seconds float64
	// TorchRef is rotnet.py, run by Python (a python3 with torch) for the
	// PyTorch baseline.
	TorchRef, Python string
}

// Result is what a benchmark measured.
type Result struct {
	Model             string  `json:"model"`
	Size              int     `json:"size"`
	Batch             int     `json:"batch"`
	Threads           int     `json:"threads"`
	Kernel            string  `json:"kernel"`
	Steps             int     `json:"steps"`
	Seconds           float64 `json:"seconds"`
	SamplesPerSecond  float64 `json:"samples_per_second"`
	TrainGFLOPPerSamp float64 `json:"train_gflop_per_sample"`
	AchievedGFLOPS    float64 `json:"achieved_gflops"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
	// FMAPeakGFLOPS is the machine's FMA ceiling on the same threads, measured right after
	// the steps (gemm.Peak, instruction set FMAPeakISA); PeakFraction is achieved over it.
	FMAPeakGFLOPS float64 `json:"fma_peak_gflops"`
	FMAPeakISA    string  `json:"fma_peak_isa"`
	PeakFraction  float64 `json:"peak_fraction"`
	Loss          float64 `json:"loss"`
	// CPUSeconds is the process CPU time (user+system) of the timed steps; on a shared machine
	// samples per CPU-second is steadier than samples per second.
	CPUSeconds          float64 `json:"cpu_seconds"`
	SamplesPerCPUSecond float64 `json:"samples_per_cpu_second"`
	// Torch holds the PyTorch reference runs of the same session (--torch-reference).
	Torch []TorchResult `json:"torch,omitempty"`
	// Speedup is samples_per_second over the fastest PyTorch run.
	Speedup float64 `json:"speedup_vs_torch,omitempty"`
}

// TorchResult is the JSON line rotnet.py bench prints.
type TorchResult struct {
	ChannelsLast     bool    `json:"channels_last"`
	Steps            int     `json:"steps"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	AchievedGFLOPS   float64 `json:"achieved_gflops"`
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`
	Torch            string  `json:"torch"`
}

// ModelNames are the networks a benchmark takes: rotnet.py's names.
func ModelNames() []string {
	names := []string{model.ArchNIN4, model.ArchNIN3, model.ArchSmall}
	for _, a := range []string{model.ArchResNet18, model.ArchResNet34, model.ArchResNet50} {
		names = append(names, a, a+"-small")
	}
	return names
}

// Config is the network of a rotnet.py name at input size.
func Config(name string, size int) model.Config {
	arch, small := strings.CutSuffix(name, "-small")
	cfg := model.DefaultConfig(arch)
	if small {
		cfg.Stem = model.StemSmall
	}
	cfg.InputSize = size
	return cfg
}

// Torch runs rotnet.py bench with the same model, batch, duration, threads and size, in the
// default and the channels-last memory format. Run it before Run: a child's peak RSS starts at
// the parent's resident size when it is spawned (Linux keeps the high-water mark across exec).
func Torch(ctx context.Context, o Options) ([]TorchResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	var runs []TorchResult
	for _, cl := range []string{"0", "1"} {
		args := []string{o.TorchRef, "bench", o.Arch, strconv.Itoa(o.Batch), strconv.FormatFloat(o.Seconds, 'g', -1, 64),
			strconv.Itoa(o.Threads), cl, strconv.Itoa(o.Size)}
		out, err := exec.CommandContext(ctx, o.Python, args...).Output()
		if err != nil {
			return nil, fmt.Errorf("torch baseline %s %s: %w", o.Python, strings.Join(args, " "), err)
		}
		var tr TorchResult
		if err := json.Unmarshal(lastLine(out), &tr); err != nil {
			return nil, fmt.Errorf("torch baseline output %q: %w", out, err)
		}
		runs = append(runs, tr)
	}
	return runs, nil
}

// Print writes r as text (`whorl bench train`: throughput, the FMA peak and
// the PyTorch runs) or one JSON object.
func (r Result) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "%s %dpx batch %d, %d threads (%s GEMM): %d steps in %.1fs (%.1f CPU-s)\n"+
		"  %.2f samples/s (%.1f per CPU-s), %.2f GFLOPS achieved (%.4f GFLOP/sample), peak RSS %.0f MiB, loss %.4f\n"+
		"  FMA peak on %d threads (%s, measured now): %.1f GFLOPS; achieved %.0f%% of it\n",
		r.Model, r.Size, r.Batch, r.Threads, r.Kernel, r.Steps, r.Seconds, r.CPUSeconds, r.SamplesPerSecond,
		r.SamplesPerCPUSecond, r.AchievedGFLOPS, r.TrainGFLOPPerSamp, float64(r.PeakRSSBytes)/(1<<20), r.Loss,
		r.Threads, r.FMAPeakISA, r.FMAPeakGFLOPS, 100*r.PeakFraction)
	for _, t := range r.Torch {
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "  PyTorch %s (channels_last=%v): %.2f samples/s, %.2f GFLOPS, peak RSS %.0f MiB\n",
			t.Torch, t.ChannelsLast, t.SamplesPerSecond, t.AchievedGFLOPS, float64(t.PeakRSSBytes)/(1<<20))
	}
	if err == nil && r.Speedup > 0 {
		_, err = fmt.Fprintf(w, "  speed-up over the faster PyTorch run: %.2fx\n", r.Speedup)
	}
	return err
}

// SetTorch records the PyTorch runs and the speed-up over the faster.
func (r *Result) SetTorch(runs []TorchResult) {
	r.Torch = runs
	var best float64
	for _, t := range runs {
		best = max(best, t.SamplesPerSecond)
	}
	if best > 0 {
		r.Speedup = r.SamplesPerSecond / best
	}
}

// lastLine is the last non-empty line of b.
func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// Run trains a freshly initialised network on one fixed rotation batch (batch/4 random images
// x 4 rotations, like rotnet.py bench) with SGD after the warm-up steps, for at least
// o.Seconds and 5 steps, then measures the machine's FMA peak on the same threads.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Batch%4 != 0 || o.Batch <= 0 {
		return Result{}, fmt.Errorf("batch %d: must be a positive multiple of 4 (images x 4 rotations)", o.Batch)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	defer model.SetThreads(model.SetThreads(o.Threads))
	net, err := model.New(Config(o.Arch, o.Size), 0)
	if err != nil {
		return Result{}, fmt.Errorf("bench train: %w", err)
	}
	x, labels := rotationBatch(o.Batch, o.Size)
	opt := model.NewSGD(model.DefaultSGDConfig())
	step := func() (float64, error) {
		net.ZeroGrads()
		loss, _, err := net.TrainStep(ctx, x, labels, 1)
		opt.Step(net.Params(), net.Grads(), 0.1)
		return loss, err
	}
	for range o.Warmup {
		if _, err := step(); err != nil {
			return Result{}, fmt.Errorf("bench train warm-up: %w", err)
		}
	}
	var loss float64
	steps, t0, c0 := 0, time.Now(), cpuSeconds()
	for time.Since(t0).Seconds() < o.Seconds || steps < 5 {
		if loss, err = step(); err != nil {
			return Result{}, fmt.Errorf("bench train step %d: %w", steps, err)
		}
		steps++
	}
	dt, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
	sps := float64(steps*o.Batch) / dt
	gf := 3 * float64(net.ForwardFLOPs()) / 1e9
	r := Result{Model: o.Arch, Size: o.Size, Batch: o.Batch, Threads: o.Threads, Kernel: gemm.Kernel(),
		Steps: steps, Seconds: dt, SamplesPerSecond: sps, TrainGFLOPPerSamp: gf, AchievedGFLOPS: sps * gf,
		PeakRSSBytes: peakRSS(), Loss: loss, CPUSeconds: cpu, SamplesPerCPUSecond: float64(steps*o.Batch) / cpu}
	r.FMAPeakGFLOPS, r.FMAPeakISA = gemm.Peak(o.Threads, peakFor(o.Seconds))
	if r.FMAPeakGFLOPS > 0 {
		r.PeakFraction = r.AchievedGFLOPS / r.FMAPeakGFLOPS
	}
	return r, nil
}

// peakFor is how long to measure the FMA peak after a benchmark of secs seconds.
func peakFor(secs float64) time.Duration {
	return time.Duration(min(max(secs/10, 0.05), 2) * float64(time.Second))
}

// rotationBatch is batch/4 random N(0,1) images, each in its 4 rotations (grouped by rotation,
// like rotnet.py bench), with the rotation index as label.
func rotationBatch(batch, size int) ([]float32, []int) {
	img := 3 * size * size
	q := batch / 4
	rng := rand.New(rand.NewPCG(0, 0))
	base := make([]float32, q*img)
	for i := range base {
		base[i] = float32(rng.NormFloat64())
	}
	x, labels := make([]float32, batch*img), make([]int, batch)
	for r := range 4 {
		for i := range q {
			k := r*q + i
			model.Rotate90(x[k*img:(k+1)*img], base[i*img:(i+1)*img], 3, size, r)
			labels[k] = r
		}
	}
	return x, labels
}

// cpuSeconds is the process's user+system CPU time so far (0 when unknown).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSS is the process's maximum resident set size in bytes (0 when unknown).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}
