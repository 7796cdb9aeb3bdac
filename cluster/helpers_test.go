package cluster

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// node is one worker of a test: a Service on a real gRPC server on loopback.
type node struct {
	svc  *Service
	gs   *grpc.Server
	addr string
}

// startNodes starts n workers with cfg; they are stopped at the end of t.
func startNodes(t testing.TB, n int, cfg Config) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, cfg)
	}
	return nodes
}

func startNode(t testing.TB, cfg Config) *node { return startServer(t, cfg, true) }

// startServer starts a worker whose gRPC server serves on the service's
// direct Listener when direct is set, on the plain listener otherwise.
func startServer(t testing.TB, cfg Config, direct bool) *node {
	t.Helper()
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(gs)
	served := lis
	if direct {
		served = svc.Listener(lis)
	}
	go func() { _ = gs.Serve(served) }()
	t.Cleanup(gs.Stop)
	return &node{svc: svc, gs: gs, addr: lis.Addr().String()}
}

func addrs(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.addr
	}
	return out
}

// joinAll makes every node join generation gen on the control channel
// concurrently; the rings are closed at the end of t.
func joinAll(t testing.TB, nodes []*node, gen uint64) []*Ring {
	t.Helper()
	return joinChannel(t, nodes, Control, gen, Float32)
}

func closeAll(rings []*Ring) {
	var wg sync.WaitGroup
	for _, r := range rings {
		if r != nil {
			wg.Go(func() { _ = r.Close() })
		}
	}
	wg.Wait()
}

// randomInputs returns n buffers of length values in [-1, 1).
func randomInputs(seed uint64, n, length int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, length)
		for j := range out[i] {
			out[i][j] = rng.Float32()*2 - 1
		}
	}
	return out
}

func clone(in [][]float32) [][]float32 {
	out := make([][]float32, len(in))
	for i := range in {
		out[i] = append([]float32(nil), in[i]...)
	}
	return out
}

// ringOrderSum is the serial sum in the ring's order: segment c is summed
// starting at member c (see plan).
func ringOrderSum(in [][]float32) []float32 {
	n := len(in)
	length := len(in[0])
	out := make([]float32, length)
	p := plan{n: n, length: length, pieceElems: 1, lanes: 1}
	for c := range n {
		lo, hi := p.segment(c)
		for i := lo; i < hi; i++ {
			acc := in[c][i]
			for j := 1; j < n; j++ {
				acc = in[(c+j)%n][i] + acc
			}
			out[i] = acc
		}
	}
	return out
}

// reduceAll runs AllReduce on every ring concurrently and returns each
// member's error.
func reduceAll(rings []*Ring, step uint64, bufs [][]float32) []error {
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs[i] = r.AllReduce(ctx, step, bufs[i])
		})
	}
	wg.Wait()
	return errs
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Job = "test"
	cfg.ChunkBytes = MinChunkBytes // 256 values: many pieces even for small buffers
	cfg.Timeout = 5 * time.Second
	return cfg
}

func sameBitsF32(a, b []float32) bool {
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
