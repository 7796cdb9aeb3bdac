package coordinator

import (
	"net/http"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// nodeMetrics are a node's Prometheus metrics, in a registry of its own (so
// several nodes in one process do not collide).
type nodeMetrics struct {
	reg           *prometheus.Registry
	leaderChanges prometheus.Counter
	samplesPerSec prometheus.Gauge
	stepSeconds   prometheus.Histogram
	denied        *prometheus.CounterVec
}

func newNodeMetrics(n *Node) *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whorl_coordinator_raft_leadership_changes_total", Help: "Leadership gained or lost by this node.",
		}),
		samplesPerSec: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whorl_coordinator_samples_per_second",
			Help: "Rotated samples (4 per image) per second of the last completed step, whole ring.",
		}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "whorl_coordinator_step_seconds", Help: "Wall time of completed steps as reported by the first rank.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		denied: deniedCounter(),
	}
	m.reg.MustRegister(m.leaderChanges, m.samplesPerSec, m.stepSeconds, m.denied, &stateCollector{n: n},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *nodeMetrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// observeStep records a completed step's time and throughput.
func (m *nodeMetrics) observeStep(req *pb.ReportProgressRequest, global int) {
	d := req.GetStepTime().AsDuration().Seconds()
	if d <= 0 {
		return
	}
	m.stepSeconds.Observe(d)
	m.samplesPerSec.Set(float64(4*global) / d)
}

// stateCollector exports the replicated state, raft and the leader's
// per-rank timings at scrape time.
type stateCollector struct{ n *Node }

var (
	descGeneration   = prometheus.NewDesc("whorl_coordinator_generation", "Current ring generation.", nil, nil)
	descGenChanges   = prometheus.NewDesc("whorl_coordinator_generation_changes_total", "Ring generation changes.", nil, nil)
	descWorkers      = prometheus.NewDesc("whorl_coordinator_workers", "Registered workers.", nil, nil)
	descEpoch        = prometheus.NewDesc("whorl_coordinator_epoch", "Current pretraining epoch.", nil, nil)
	descNextStep     = prometheus.NewDesc("whorl_coordinator_next_step", "First uncompleted step of the epoch.", nil, nil)
	descPhase        = prometheus.NewDesc("whorl_coordinator_job_phase", "1 for the job's current phase.", []string{"phase"}, nil)
	descRaftState    = prometheus.NewDesc("whorl_coordinator_raft_state", "1 for this node's raft state.", []string{"state"}, nil)
	descCommitIndex  = prometheus.NewDesc("whorl_coordinator_raft_commit_index", "Raft commit index.", nil, nil)
	descAppliedIndex = prometheus.NewDesc("whorl_coordinator_raft_applied_index", "Raft applied index.", nil, nil)
	descCompute      = prometheus.NewDesc("whorl_coordinator_rank_compute_seconds", "Median recent compute time per step (step time minus all-reduce wait) of a rank (leader only).", []string{"worker", "rank"}, nil)
	descWait         = prometheus.NewDesc("whorl_coordinator_rank_allreduce_wait_seconds", "Median recent all-reduce wait per step of a rank (leader only).", []string{"worker", "rank"}, nil)
	descStraggler    = prometheus.NewDesc("whorl_coordinator_straggler", "1 when the rank is slower than the median by the straggler factor (leader only).", []string{"worker", "rank"}, nil)
)

// Describe sends the descriptors.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect sends the current values.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c.n.fsm.View(func(s *State) {
		g(descGeneration, float64(s.Generation))
		ch <- prometheus.MustNewConstMetric(descGenChanges, prometheus.CounterValue, float64(s.GenerationChanges))
		g(descWorkers, float64(len(s.Workers)))
		if s.Job != nil {
			g(descEpoch, float64(s.Job.Epoch))
			g(descNextStep, float64(s.Job.NextStep))
			g(descPhase, 1, string(s.Job.Phase))
		}
	})
	if rp := c.n.rp; rp != nil {
		g(descRaftState, 1, map[raft.RaftState]string{raft.Follower: "follower", raft.Candidate: "candidate",
			raft.Leader: "leader", raft.Shutdown: "shutdown"}[rp.raft.State()])
		g(descCommitIndex, float64(rp.raft.CommitIndex()))
		g(descAppliedIndex, float64(rp.raft.AppliedIndex()))
	}
	if !c.n.IsLeader() {
		return
	}
	for id, t := range c.n.leases.timingsOf(c.n.cfg.StragglerFactor) {
		rank := strconv.Itoa(t.Rank)
		g(descCompute, t.Compute.Seconds(), id, rank)
		g(descWait, t.Wait.Seconds(), id, rank)
		s := 0.0
		if t.Straggler {
			s = 1
		}
		g(descStraggler, s, id, rank)
	}
}
