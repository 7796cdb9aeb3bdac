package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// freezer is a TCP proxy that can stop forwarding without closing the
// connections: the network silently drops everything from then on.
type freezer struct {
	lis    net.Listener
	target string
	frozen atomic.Bool
	moved  atomic.Int64 // bytes forwarded
	limit  atomic.Int64 // freeze once moved passes it (0: no limit)
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{lis: lis, target: target}
	f.wg.Go(f.accept)
	return f
}

func (f *freezer) addr() string { return f.lis.Addr().String() }

func (f *freezer) accept() {
	for {
		in, err := f.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, in, out)
		f.mu.Unlock()
		f.wg.Go(func() { f.pipe(out, in) })
		f.wg.Go(func() { f.pipe(in, out) })
	}
}

// pipe copies until frozen (then it stops reading, so the sender's buffers
// fill up, and holds the connections open) or until a connection closes.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for !f.frozen.Load() {
		k, err := src.Read(buf)
		if lim := f.limit.Load(); lim > 0 && f.moved.Add(int64(k)) > lim {
			f.frozen.Store(true)
		}
		if f.frozen.Load() {
			break
		}
		if _, werr := dst.Write(buf[:k]); werr != nil || err != nil {
			return
		}
	}
}

// freezeAfter makes the proxy go silent once n more bytes passed it.
func (f *freezer) freezeAfter(n int64) { f.limit.Store(f.moved.Load() + n) }

func (f *freezer) close() {
	_ = f.lis.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestNetworkDropFailsWithinDeadline: the link into member 1 goes silent in
// the middle of a large all-reduce, after 1 MiB of it (senders end up blocked by flow
// control); every member still fails within the deadline and nothing leaks.
// Both transports.
func TestNetworkDropFailsWithinDeadline(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		t.Run(tr.String(), func(t *testing.T) { testNetworkDrop(t, tr) })
	}
}

func testNetworkDrop(t *testing.T, tr Transport) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := testConfig()
	cfg.Timeout, cfg.Transport = time.Second, tr
	cfg.ChunkBytes = 256 << 10
	nodes := startNodes(t, 3, cfg)
	proxy := newFreezer(t, nodes[1].addr)
	defer proxy.close()
	real := nodes[1].addr
	nodes[1].addr = proxy.addr() // members reach rank 1 through the proxy
	rings := joinAll(t, nodes, 1)
	nodes[1].addr = real
	bufs := randomInputs(4, 3, 4<<20)
	proxy.freezeAfter(1 << 20) // mid-transfer: each link carries 2*(2/3)*16 MiB
	errs, took := survivorsReduce(rings, -1, 7, bufs)
	for i, err := range errs {
		checkFailure(t, i, err, took[i], cfg.Timeout)
	}
	closeAll(rings)
	for _, n := range nodes {
		n.gs.Stop()
	}
}

// TestAbortDoesNotWaitForASilentPeer: Close of an idle ring waits up to the
// timeout for the next member to end the lanes; Abort does not, even when
// that member went silent, and later collectives fail with ErrClosed.
func TestAbortDoesNotWaitForASilentPeer(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 20 * time.Second
	nodes := startNodes(t, 2, cfg)
	proxy := newFreezer(t, nodes[1].addr)
	defer proxy.close()
	real := nodes[1].addr
	nodes[1].addr = proxy.addr()
	rings := joinAll(t, nodes, 1)
	nodes[1].addr = real
	for r, err := range reduceAll(rings, 1, randomInputs(1, 2, 1000)) {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	proxy.freezeAfter(0)
	start := time.Now()
	rings[0].Abort()
	if took := time.Since(start); took > cfg.Timeout/2 {
		t.Fatalf("Abort took %v with a silent next member (timeout %v)", took, cfg.Timeout)
	}
	if err := rings[0].AllReduceSum(context.Background(), []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AllReduceSum after Abort: %v, want ErrClosed", err)
	}
}
