package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the worker's Prometheus series, in their own registry so that
// several workers can live in one process (tests).
type metrics struct {
	reg               *prometheus.Registry
	steps             prometheus.Counter
	images            prometheus.Counter
	loss              prometheus.Gauge
	stepSeconds       prometheus.Histogram
	reduceWait        prometheus.Histogram
	algbw             prometheus.Gauge
	generation        prometheus.Gauge
	generationChanges prometheus.Counter
	ringErrors        prometheus.Counter
	checkpoints       prometheus.Counter
	rank              prometheus.Gauge
}

// newMetrics registers the worker's series (labelled with its id) and the Go
// runtime collectors.
func newMetrics(id string) *metrics {
	c := prometheus.Labels{"worker": id}
	m := &metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "whorl", Subsystem: "worker", Name: name, Help: help, ConstLabels: c})
		m.reg.MustRegister(x)
		return x
	}
	gauge := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "whorl", Subsystem: "worker", Name: name, Help: help, ConstLabels: c})
		m.reg.MustRegister(x)
		return x
	}
	hist := func(name, help string) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "whorl", Subsystem: "worker", Name: name, Help: help,
			ConstLabels: c, Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
		m.reg.MustRegister(x)
		return x
	}
	m.steps = counter("steps_total", "Training steps completed by this worker.")
	m.images = counter("images_total", "Images (before the 4 rotations) trained on by this worker; rate() gives samples/s.")
	m.loss = gauge("loss", "Local mean rotation loss of the last step.")
	m.stepSeconds = hist("step_seconds", "Wall time of a whole training step.")
	m.reduceWait = hist("allreduce_wait_seconds", "Time spent in the gradient all-reduce (waiting for the slowest rank included).")
	m.algbw = gauge("allreduce_algbw_bytes_per_second", "Algorithm bandwidth of the last gradient all-reduce: gradient bytes / all-reduce time.")
	m.generation = gauge("ring_generation", "Ring generation this worker trains in.")
	m.generationChanges = counter("generation_changes_total", "Rings formed (one per generation joined).")
	m.ringErrors = counter("ring_errors_total", "Generations aborted by a ring error or a generation change.")
	m.checkpoints = counter("checkpoints_total", "Checkpoints committed by this worker (rank 0).")
	m.rank = gauge("rank", "Rank of this worker in its ring (-1 when none).")
	m.rank.Set(-1)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeStep records one completed step of images images whose gradient
// buffer has n floats.
func (m *metrics) observeStep(images int, loss float64, took, wait time.Duration, n int) {
	m.steps.Inc()
	m.images.Add(float64(images))
	m.loss.Set(loss)
	m.stepSeconds.Observe(took.Seconds())
	m.reduceWait.Observe(wait.Seconds())
	if wait > 0 {
		m.algbw.Set(float64(4*n) / wait.Seconds())
	}
}
