package ringbench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/bytesize"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// Options are a benchmark's settings (`whorl bench allreduce`'s flags).
type Options struct {
	// Workers is the ring's size; Iters the timed all-reduces after
	// Warmup untimed ones (the first is checked bit for bit).
	Workers, Iters, Warmup int
	// Streams are the gRPC streams per ring link; Chunk the largest
	// message payload; Transport the ring's transport (cluster.ParseTransport).
	Streams   int
	Chunk     int64
	Transport string
	// Bytes is the buffer's size (rounded down to whole float32s).
	Bytes int64
	// Procs runs every member in a child process; TLS runs the ring on
	// mutual TLS with throwaway worker identities (in-process only).
	Procs, TLS bool
	// Timeout is the deadline of one all-reduce.
	Timeout time.Duration
}

// Result is what a benchmark measured.
type Result struct {
	Workers       int     `json:"workers"`
	Bytes         int64   `json:"bytes"`
	Iters         int     `json:"iters"`
	Procs         bool    `json:"procs"`
	SecondsPerOp  float64 `json:"seconds_per_op"`
	AlgBW         float64 `json:"algbw_gibps"`
	BusBW         float64 `json:"busbw_gibps"`
	TCP           float64 `json:"tcp_gibps"`
	Ratio         float64 `json:"ratio"`
	Correct       bool    `json:"correct"`
	TCPLinkBytes  int64   `json:"tcp_link_bytes_per_round"`
	ChunkBytes    int64   `json:"chunk_bytes"`
	StreamsPerLnk int     `json:"streams_per_link"`
	Transport     string  `json:"transport"`
	// TLS: the ring ran on mutual TLS (--tls).
	TLS bool `json:"tls"`
}

// Print writes r as two lines of text (`whorl bench allreduce`) or one
// JSON object.
func (r Result) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	mode := "goroutines"
	if r.Procs {
		mode = "processes"
	}
	if r.TLS {
		mode += ", mutual TLS"
	}
	_, err := fmt.Fprintf(w, "all-reduce  workers=%d (%s) transport=%s bytes=%s iters=%d  time/op=%.3f ms\n"+
		"  algbw %.3f GiB/s  busbw %.3f GiB/s  |  raw TCP ring, per link: %.3f GiB/s  |  busbw/tcp %.2f  correct=%v\n",
		r.Workers, mode, r.Transport, bytesize.Format(r.Bytes), r.Iters, r.SecondsPerOp*1e3,
		r.AlgBW, r.BusBW, r.TCP, r.Ratio, r.Correct)
	return err
}

// RingConfig is the cluster configuration of the benchmark's members.
func (o Options) RingConfig() cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.Job = "bench"
	cfg.Timeout = o.Timeout
	cfg.Streams = o.Streams
	cfg.ChunkBytes = int(o.Chunk)
	cfg.Transport, _ = cluster.ParseTransport(o.Transport) // the flag accepts valid names only
	return cfg
}

// Spawn starts member rank of a --procs benchmark as a child process
// running Worker with o and rank, its stdin and stdout being Worker's in
// and out (the binary's hidden subcommand: cmd/whorl's).
type Spawn func(ctx context.Context, o Options, rank int) *exec.Cmd

// Run runs the benchmark: the members as goroutines, or as processes
// started by spawn with o.Procs, checked bit for bit against the serial
// sum in ring order, and in the same run a ring of raw TCP loopback
// connections carrying what each ring link carries (the topology's
// physical limit: Result.TCP and Ratio).
func Run(ctx context.Context, o Options, spawn Spawn) (Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	res := Result{Workers: o.Workers, Bytes: o.Bytes &^ 3, Iters: o.Iters, Procs: o.Procs,
		ChunkBytes: o.Chunk, StreamsPerLnk: o.Streams, Transport: o.Transport, TLS: o.TLS}
	n := float64(o.Workers)
	res.TCPLinkBytes = int64(float64(res.Bytes) * 2 * max(n-1, 1) / max(n, 2))
	var secs, tcpSecs float64
	var err error
	if o.Procs && o.TLS {
		return res, errors.New("mutual TLS (--tls) runs the members in-process only; drop --procs")
	}
	if o.Procs {
		secs, tcpSecs, res.Correct, err = runProcs(ctx, o, res.TCPLinkBytes, spawn)
	} else {
		secs, tcpSecs, res.Correct, err = runInProcess(ctx, o, res.TCPLinkBytes)
	}
	if err != nil {
		return res, err
	}
	res.SecondsPerOp = secs / float64(o.Iters)
	res.AlgBW = float64(res.Bytes) / res.SecondsPerOp / (1 << 30)
	res.BusBW = res.AlgBW * 2 * (n - 1) / n
	res.TCP = float64(res.TCPLinkBytes) * float64(o.Iters) / tcpSecs / (1 << 30)
	if res.TCP > 0 {
		res.Ratio = res.BusBW / res.TCP
	}
	return res, nil
}

// benchInputs is member rank's deterministic input buffer.
func benchInputs(rank, length int) []float32 {
	rng := rand.New(rand.NewPCG(uint64(rank)+1, 42))
	b := make([]float32, length)
	for i := range b {
		b[i] = rng.Float32()*2 - 1
	}
	return b
}

// sameBits reports whether a and b are bit-identical.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// localMember is one ring member of the in-process benchmark.
type localMember struct {
	svc  *cluster.Service
	gs   *grpc.Server
	addr string
	ring *cluster.Ring
	buf  []float32
}

func startLocalMember(cfg cluster.Config) (*localMember, error) {
	svc, err := cluster.NewService(cfg)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	gs := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(gs)
	go func() { _ = gs.Serve(svc.Listener(lis)) }()
	return &localMember{svc: svc, gs: gs, addr: lis.Addr().String()}, nil
}

func (m *localMember) stop() {
	if m.ring != nil {
		_ = m.ring.Close()
	}
	m.gs.Stop()
}

// runInProcess runs the members as goroutines and returns the ring
// and TCP baseline times: a TCP round (linkBytes on every link) runs after
// every timed iteration so both see the same machine load.
func runInProcess(ctx context.Context, o Options, linkBytes int64) (float64, float64, bool, error) {
	tr, err := newTCPRing(ctx, max(o.Workers, 2))
	if err != nil {
		return 0, 0, false, err
	}
	defer tr.close()
	members, want, err := startLocalRing(ctx, o)
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	if err != nil {
		return 0, 0, false, err
	}
	correct := true
	for it := range o.Warmup {
		if err := reduceMembers(ctx, members, uint64(it)); err != nil {
			return 0, 0, false, err
		}
		for _, m := range members {
			correct = correct && (it > 0 || sameBits(m.buf, want))
		}
	}
	var secs, tcpSecs float64
	for it := range o.Iters {
		start := time.Now()
		if err := reduceMembers(ctx, members, uint64(o.Warmup+it)); err != nil {
			return 0, 0, false, err
		}
		secs += time.Since(start).Seconds()
		d, err := tr.round(linkBytes)
		if err != nil {
			return 0, 0, false, err
		}
		tcpSecs += d.Seconds()
	}
	for _, m := range members {
		correct = correct && sameBits(m.buf, members[0].buf)
	}
	return secs, tcpSecs, correct, nil
}

// benchRingTLS issues a throwaway CA and worker identity in a temporary
// folder (removed once loaded) and loads them as a worker would.
func benchRingTLS() (tlsfiles.Configs, error) {
	dir, err := os.MkdirTemp("", "whorl-bench-tls-")
	if err != nil {
		return tlsfiles.Configs{}, err
	}
	defer os.RemoveAll(dir)
	ca, _, err := tlsfiles.OpenAuthority(dir, "whorl bench CA", "", time.Hour)
	if err != nil {
		return tlsfiles.Configs{}, err
	}
	f, err := ca.WriteIdentity(dir, identity.ID{Role: identity.Worker, Name: "bench"}, nil, time.Hour)
	if err != nil {
		return tlsfiles.Configs{}, err
	}
	return tlsfiles.Load(f)
}

// startLocalRing starts o.Workers members with their inputs and joins them
// in a ring; it returns them (also on error, to be stopped) and the
// expected result.
func startLocalRing(ctx context.Context, o Options) ([]*localMember, []float32, error) {
	members := make([]*localMember, 0, o.Workers)
	addrs := make([]string, o.Workers)
	cfg := o.RingConfig()
	if o.TLS {
		tc, err := benchRingTLS()
		if err != nil {
			return members, nil, err
		}
		// What a worker's ring gets from its --tls-* files (worker/run.go):
		// SPIFFE verification of every peer, lanes dialled to workers only.
		cfg.TLS, cfg.DialTLS = tc.Peers(nil), tc.Peers(nil, identity.Worker)
	}
	for i := range o.Workers {
		m, err := startLocalMember(cfg)
		if err != nil {
			return members, nil, err
		}
		members = append(members, m)
		addrs[i] = m.addr
	}
	inputs := make([][]float32, o.Workers)
	g, gctx := errgroup.WithContext(ctx)
	for i, m := range members {
		inputs[i] = benchInputs(i, int(o.Bytes/4))
		m.buf = append([]float32(nil), inputs[i]...)
		g.Go(func() (err error) {
			m.ring, err = m.svc.NewRing(gctx, 1, addrs, i)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return members, nil, err
	}
	return members, cluster.RingOrderSum(inputs), nil
}

// reduceMembers runs one all-reduce on every member at once.
func reduceMembers(ctx context.Context, members []*localMember, step uint64) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, m := range members {
		g.Go(func() error { return m.ring.AllReduce(gctx, step, m.buf) })
	}
	return g.Wait()
}

// tcpRing is the baseline: n plain loopback TCP connections arranged as
// the ring (member i sends to member i+1).
type tcpRing struct {
	senders, receivers []net.Conn
	lis                []net.Listener
	buf                [][]byte
}

func newTCPRing(ctx context.Context, n int) (*tcpRing, error) {
	tr := &tcpRing{}
	var d net.Dialer
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tr.close()
			return nil, fmt.Errorf("tcp baseline: listen: %w", err)
		}
		tr.lis = append(tr.lis, l)
	}
	for i := range n {
		c, err := d.DialContext(ctx, "tcp", tr.lis[(i+1)%n].Addr().String())
		if err != nil {
			tr.close()
			return nil, fmt.Errorf("tcp baseline: dial: %w", err)
		}
		tr.senders = append(tr.senders, c)
		rc, err := tr.lis[(i+1)%n].Accept()
		if err != nil {
			tr.close()
			return nil, fmt.Errorf("tcp baseline: accept: %w", err)
		}
		tr.receivers = append(tr.receivers, rc)
		tr.buf = append(tr.buf, make([]byte, 1<<20), make([]byte, 1<<20))
	}
	return tr, nil
}

// round makes every connection carry linkBytes at once and returns when all
// of them were received.
func (tr *tcpRing) round(linkBytes int64) (time.Duration, error) {
	var g errgroup.Group
	start := time.Now()
	for i := range tr.senders {
		g.Go(func() error { return tcpSend(tr.senders[i], tr.buf[2*i], linkBytes) })
		g.Go(func() error { return tcpReceive(tr.receivers[i], tr.buf[2*i+1], linkBytes) })
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("tcp baseline: %w", err)
	}
	return time.Since(start), nil
}

func (tr *tcpRing) close() {
	for _, c := range append(append([]net.Conn(nil), tr.senders...), tr.receivers...) {
		_ = c.Close()
	}
	for _, l := range tr.lis {
		_ = l.Close()
	}
}

func tcpSend(c net.Conn, buf []byte, total int64) error {
	for sent := int64(0); sent < total; {
		k, err := c.Write(buf[:min(int64(len(buf)), total-sent)])
		if err != nil {
			return err
		}
		sent += int64(k)
	}
	return nil
}

func tcpReceive(c net.Conn, buf []byte, total int64) error {
	for got := int64(0); got < total; {
		k, err := c.Read(buf[:min(int64(len(buf)), total-got)])
		if err != nil {
			return err
		}
		got += int64(k)
	}
	return nil
}

// workerHello is a child's first line: the addresses of its ring service
// and of its TCP baseline listener.
type workerHello struct {
	Addr string `json:"addr"`
	TCP  string `json:"tcp"`
}

// workerStart is the parent's line to every child: the ring's members and
// the TCP baseline's listeners, in ring order.
type workerStart struct {
	Members []string `json:"members"`
	TCP     []string `json:"tcp"`
	// LinkBytes is what each TCP link carries per baseline round.
	LinkBytes int64 `json:"link_bytes"`
}

// workerReport is a child's last line.
type workerReport struct {
	Seconds    float64 `json:"seconds"`
	TCPSeconds float64 `json:"tcp_seconds"`
	Correct    bool    `json:"correct"`
	Hash       uint64  `json:"hash"`
}

// runProcs runs every member in a child process (spawn's) and returns the slowest member's ring
// time and TCP baseline time: the children run a TCP round over their own
// ring of connections after each timed iteration.
func runProcs(ctx context.Context, o Options, linkBytes int64, spawn Spawn) (float64, float64, bool, error) {
	if spawn == nil {
		return 0, 0, false, errors.New("members in processes: no way to start them given")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout*time.Duration(o.Iters+o.Warmup+2))
	defer cancel()
	children := make([]*benchChild, o.Workers)
	defer func() {
		for _, c := range children {
			if c != nil {
				c.stop()
			}
		}
	}()
	start := workerStart{LinkBytes: linkBytes}
	for i := range children {
		c, err := startBenchChild(ctx, spawn, o, i)
		if err != nil {
			return 0, 0, false, err
		}
		children[i] = c
		start.Members = append(start.Members, c.hello.Addr)
		start.TCP = append(start.TCP, c.hello.TCP)
	}
	for _, c := range children {
		if err := c.enc.Encode(start); err != nil {
			return 0, 0, false, fmt.Errorf("start worker %d: %w", c.rank, err)
		}
	}
	return collectReports(children)
}

// collectReports reads every child's report: the time is the slowest
// member's; correct needs every check to pass and every buffer to match.
func collectReports(children []*benchChild) (float64, float64, bool, error) {
	reps := make([]workerReport, len(children))
	for i, c := range children {
		if err := c.dec.Decode(&reps[i]); err != nil {
			return 0, 0, false, fmt.Errorf("report of worker %d: %w", c.rank, err)
		}
	}
	var secs, tcp float64
	correct := true
	for _, rep := range reps {
		secs, tcp = max(secs, rep.Seconds), max(tcp, rep.TCPSeconds)
		correct = correct && rep.Correct && rep.Hash == reps[0].Hash
	}
	return secs, tcp, correct, nil
}

// benchChild is one worker process of --procs.
type benchChild struct {
	rank  int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	dec   *json.Decoder
	hello workerHello
}

func startBenchChild(ctx context.Context, spawn Spawn, o Options, rank int) (*benchChild, error) {
	cmd := spawn(ctx, o, rank)
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %d: %w", rank, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %d: %w", rank, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", rank, err)
	}
	c := &benchChild{rank: rank, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), dec: json.NewDecoder(stdout)}
	if err := c.dec.Decode(&c.hello); err != nil {
		c.stop()
		return nil, fmt.Errorf("worker %d: read its address: %w", rank, err)
	}
	return c, nil
}

func (c *benchChild) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// Worker is one member of a --procs benchmark, in its own process: it
// writes its addresses to out, reads the ring it joins from in, checks the
// first warm-up result, times the iterations (each followed by a TCP
// baseline round) and writes its report to out.
func Worker(ctx context.Context, o Options, rank int, in io.Reader, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := startLocalMember(o.RingConfig())
	if err != nil {
		return err
	}
	defer m.stop()
	tcpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("tcp baseline: listen: %w", err)
	}
	defer tcpLis.Close()
	enc, dec := json.NewEncoder(out), json.NewDecoder(in)
	if err := enc.Encode(workerHello{Addr: m.addr, TCP: tcpLis.Addr().String()}); err != nil {
		return err
	}
	var start workerStart
	if err := dec.Decode(&start); err != nil {
		return fmt.Errorf("read the ring's members: %w", err)
	}
	link, err := joinTCPLink(ctx, tcpLis, start.TCP[(rank+1)%len(start.TCP)])
	if err != nil {
		return err
	}
	defer link.close()
	if m.ring, err = m.svc.NewRing(ctx, 1, start.Members, rank); err != nil {
		return err
	}
	length := int(o.Bytes / 4)
	inputs := make([][]float32, o.Workers)
	for i := range inputs {
		inputs[i] = benchInputs(i, length)
	}
	m.buf = append([]float32(nil), inputs[rank]...)
	want := cluster.RingOrderSum(inputs)
	inputs = nil
	rep, err := timeWorker(ctx, m, o, want, func() (time.Duration, error) { return link.round(start.LinkBytes) })
	if err != nil {
		return err
	}
	return enc.Encode(rep)
}

// tcpLink is one child's part of the TCP baseline ring: a connection to the
// next member and one from the previous member.
type tcpLink struct {
	send, recv net.Conn
	sbuf, rbuf []byte
}

func joinTCPLink(ctx context.Context, lis net.Listener, next string) (*tcpLink, error) {
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	var d net.Dialer
	send, err := d.DialContext(ctx, "tcp", next)
	if err != nil {
		return nil, fmt.Errorf("tcp baseline: dial: %w", err)
	}
	recv := <-accepted
	if recv == nil {
		_ = send.Close()
		return nil, fmt.Errorf("tcp baseline: accept failed")
	}
	return &tcpLink{send: send, recv: recv, sbuf: make([]byte, 1<<20), rbuf: make([]byte, 1<<20)}, nil
}

// round sends n bytes to the next member while receiving n from the
// previous one.
func (l *tcpLink) round(n int64) (time.Duration, error) {
	var g errgroup.Group
	start := time.Now()
	g.Go(func() error { return tcpSend(l.send, l.sbuf, n) })
	g.Go(func() error { return tcpReceive(l.recv, l.rbuf, n) })
	err := g.Wait()
	return time.Since(start), err
}

func (l *tcpLink) close() {
	_ = l.send.Close()
	_ = l.recv.Close()
}

func timeWorker(ctx context.Context, m *localMember, o Options, want []float32,
	baseline func() (time.Duration, error)) (workerReport, error) {
	var rep workerReport
	for it := range o.Warmup {
		if err := m.ring.AllReduce(ctx, uint64(it), m.buf); err != nil {
			return rep, err
		}
		if it == 0 {
			rep.Correct = sameBits(m.buf, want)
		}
	}
	barrier := []float32{1}
	for it := range o.Iters {
		if err := m.ring.AllReduce(ctx, 0, barrier); err != nil {
			return rep, fmt.Errorf("barrier: %w", err)
		}
		start := time.Now()
		if err := m.ring.AllReduce(ctx, uint64(o.Warmup+it), m.buf); err != nil {
			return rep, err
		}
		rep.Seconds += time.Since(start).Seconds()
		d, err := baseline()
		if err != nil {
			return rep, fmt.Errorf("tcp baseline: %w", err)
		}
		rep.TCPSeconds += d.Seconds()
	}
	rep.Hash = hashBits(m.buf)
	return rep, nil
}

// hashBits is the FNV-1a hash of the values' bits.
func hashBits(buf []float32) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, v := range buf {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return h.Sum64()
}
