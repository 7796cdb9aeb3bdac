package worker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/rpcguard"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/model"
)

// ringJob names the ring collectives of this worker's service (the
// coordinator runs one job at a time; generations never repeat).
const ringJob = "whorl-pretraining"

// New validates cfg and returns a Worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Worker{cfg: cfg, log: log.With("worker", cfg.ID), met: newMetrics(cfg.ID)}, nil
}

// Run serves the ring on Config.Listen, registers with the coordinator and
// trains until ctx is done; then it aborts the step in flight, leaves the
// ring, deregisters within LeaveTimeout and stops its servers. It returns
// nil after a graceful shutdown.
func (w *Worker) Run(ctx context.Context) error {
	tc, err := tlsfiles.Load(w.cfg.TLS)
	if err != nil {
		return fmt.Errorf("worker %s: %w: %w", w.cfg.ID, ErrConfig, err)
	}
	if err := w.checkSelf(tc); err != nil {
		return err
	}
	if !tc.Enabled() && w.cfg.Insecure && !tlsfiles.Loopback(w.cfg.Listen) {
		w.log.Warn("serving the ring in plaintext beyond loopback (--insecure): anyone who reaches it can open lanes",
			"listen", w.cfg.Listen)
	}
	ccfg := cluster.DefaultConfig()
	// The ring server admits any whorl identity (health checks), but lanes
	// only from workers, each only as the rank the coordinator gave it
	// (laneIdentities), and this worker's lanes go to workers only.
	ccfg.Job, ccfg.Transport = ringJob, w.cfg.RingTransport
	w.lanes = &laneIdentities{}
	if tc.Enabled() {
		ccfg.TLS, ccfg.DialTLS, ccfg.AuthorizePeer = tc.Peers(nil), tc.Peers(nil, identity.Worker), workersOnly
		ccfg.AuthorizeLane = w.lanes.authorize
	}
	if w.cfg.RingTimeout > 0 {
		ccfg.Timeout = w.cfg.RingTimeout
	}
	svc, err := cluster.NewService(ccfg)
	if err != nil {
		return fmt.Errorf("worker %s: ring service: %w", w.cfg.ID, err)
	}
	lis, err := net.Listen("tcp", w.cfg.Listen)
	if err != nil {
		return fmt.Errorf("worker %s: listen on %s: %w", w.cfg.ID, w.cfg.Listen, err)
	}
	opts := append(rpcguard.New(w.log, "worker").Options(), svc.ServerOptions()...)
	gs, hs := grpc.NewServer(opts...), health.NewServer()
	svc.Register(gs)
	healthpb.RegisterHealthServer(gs, hs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(svc.Listener(lis)) }()
	defer w.stopServer(gs, hs, served)
	stopMetrics, err := w.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	return w.runClient(ctx, svc, lis.Addr().String(), tc.Client)
}

// workersOnly admits a ring lane from a worker identity only.
func workersOnly(cs tls.ConnectionState) error {
	id, err := identity.FromConnState(cs)
	if err != nil {
		return err
	}
	if id.Role != identity.Worker {
		return fmt.Errorf("%w: %s may not open ring lanes (workers only)", identity.ErrPermissionDenied, id)
	}
	return nil
}

// checkSelf refuses a certificate that is not this worker's identity
// (spiffe://<trust domain>/worker/<ID>): a worker acts only as itself.
func (w *Worker) checkSelf(tc tlsfiles.Configs) error {
	if err := tc.RequireSelf(w.cfg.TLS, identity.Worker, w.cfg.ID); err != nil {
		return fmt.Errorf("worker %s: %w: %w", w.cfg.ID, ErrConfig, err)
	}
	return nil
}

// runClient trains with the real coordinator client and ring service.
func (w *Worker) runClient(ctx context.Context, svc *cluster.Service, listenAddr string, clientTLS *tls.Config) error {
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.TLS, cfg.Logger = w.cfg.Coordinators, clientTLS, w.log
	cl, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("worker %s: coordinator client: %w", w.cfg.ID, err)
	}
	defer cl.Close()
	cc := &coordClient{c: cl, incarnation: incarnation(), wait: w.cfg.AssignmentWait}
	advertise := w.cfg.Advertise
	if advertise == "" {
		advertise = defaultAdvertise(listenAddr, net.InterfaceAddrs)
	}
	if w.cfg.Im2colCache < model.DefaultIm2colCache { // process-wide, as the thread count
		model.SetIm2colCache(w.cfg.Im2colCache)
	}
	w.log.Info("worker serving", "listen", listenAddr, "advertise", advertise, "coordinators", w.cfg.Coordinators,
		"data", w.cfg.Data, "dir", w.cfg.DataDir, "tls", w.cfg.TLS.Enabled())
	p := parts{coord: cc, rings: clusterRings{svc: svc, lanes: w.lanes}, ringAddr: advertise,
		replicas: &netFactory{mode: w.cfg.Data, dir: w.cfg.DataDir, fetch: cc, threads: w.cfg.Threads,
			cacheBytes: w.cfg.ImageCache, ahead: w.cfg.ReadAhead, log: w.log}}
	return w.train(ctx, p)
}

// stopServer marks the worker not serving and stops the gRPC server,
// forcibly after a second.
func (w *Worker) stopServer(gs *grpc.Server, hs *health.Server, served <-chan error) {
	hs.Shutdown()
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		gs.Stop()
		<-done
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		w.log.Warn("ring server", "err", err)
	}
}

// serveMetrics serves /metrics on MetricsAddr (if set); the returned
// function stops it.
func (w *Worker) serveMetrics() (func(), error) {
	if w.cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	lis, err := net.Listen("tcp", w.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("worker %s: metrics listener %s: %w", w.cfg.ID, w.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.met.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Warn("metrics server", "err", err)
		}
	}()
	w.log.Info("metrics serving", "addr", lis.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// defaultAdvertise is the ring address to announce when none is given:
// the listener's, or, when it listens on every interface (0.0.0.0, ::), the
// first non-loopback IPv4 address of the host with the listener's port (a
// container or pod whose address is not known before it starts).
func defaultAdvertise(listenAddr string, addrs func() ([]net.Addr, error)) string {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return listenAddr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return listenAddr
	}
	as, err := addrs()
	if err != nil {
		return listenAddr
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return net.JoinHostPort(n.IP.String(), port)
		}
	}
	return listenAddr
}

// incarnation is a random id of this worker process.
func incarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clusterRings builds rings with the worker's cluster.Service; lanes names
// the members' identities of each generation for the lane check.
type clusterRings struct {
	svc   *cluster.Service
	lanes *laneIdentities
}

func (c clusterRings) NewRing(ctx context.Context, gen uint64, members, ids []string, rank int, gr GradReduce) (Ring, error) {
	c.lanes.set(gen, ids)
	r, err := c.svc.NewRing(ctx, gen, members, rank)
	if err != nil {
		return nil, err
	}
	rs := &channelRings{control: r}
	if gr.BucketElems > 0 && len(members) > 1 {
		enc := cluster.Float32
		if gr.BF16 {
			enc = cluster.BFloat16
		}
		if rs.bulk, err = c.svc.NewChannelRing(ctx, cluster.Bulk, gen, members, rank, enc); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	return rs, nil
}

// channelRings is a generation's control ring and, when the job sums
// gradient buckets during backward, its bulk ring: Start runs there, so a
// bucket never delays the batch-statistics sums backward waits for.
type channelRings struct{ control, bulk *cluster.Ring }

func (c *channelRings) AllReduceSum(ctx context.Context, buf []float32) error {
	return c.control.AllReduceSum(ctx, buf)
}

func (c *channelRings) Start(ctx context.Context, buf []float32) Waiter {
	if c.bulk != nil {
		return c.bulk.Start(ctx, buf)
	}
	return c.control.Start(ctx, buf)
}

func (c *channelRings) SetStep(step uint64) {
	c.control.SetStep(step)
	if c.bulk != nil {
		c.bulk.SetStep(step)
	}
}

// DirectLanes counts the control ring's direct lanes (the bulk ring's
// lanes use the same transport).
func (c *channelRings) DirectLanes() int { return c.control.DirectLanes() }

// Abort aborts both rings.
func (c *channelRings) Abort() {
	if c.bulk != nil {
		c.bulk.Abort()
	}
	c.control.Abort()
}

// Close aborts the bulk ring, then closes the control ring. The bulk ring
// needs no graceful end (every bucket is waited for inside its step), and
// a graceful one would wait up to the ring timeout for a next member that
// may be the peer whose loss ended the generation.
func (c *channelRings) Close() error {
	if c.bulk != nil {
		c.bulk.Abort()
	}
	return c.control.Close()
}
