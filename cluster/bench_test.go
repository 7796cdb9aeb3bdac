package cluster

import (
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAllReduce measures the ring on loopback; compare with
// `whorl bench allreduce`, which also measures raw TCP in the same run.
func BenchmarkAllReduce(b *testing.B) {
	for _, c := range []struct{ n, bytes, streams int }{
		{2, 16 << 20, 2}, {4, 16 << 20, 1}, {4, 16 << 20, 2}, {4, 16 << 20, 4}, {4, 64 << 20, 2}, {4, 4 << 20, 2}, {4, 1 << 20, 2}, {4, 1 << 10, 2},
	} {
		b.Run(fmt.Sprintf("N=%d/bytes=%d/streams=%d", c.n, c.bytes, c.streams), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Streams = c.streams
			benchReduce(b, c.n, c.bytes, func() Config { return cfg })
		})
	}
}

// BenchmarkAllReduceTLS measures what mutual TLS costs on each transport.
func BenchmarkAllReduceTLS(b *testing.B) {
	ca := tlstest.NewCA(b, "bench")
	for _, tr := range []Transport{Direct, InStream} {
		for _, secure := range []bool{false, true} {
			b.Run(fmt.Sprintf("N=4/bytes=%d/%v/tls=%v", 16<<20, tr, secure), func(b *testing.B) {
				benchReduce(b, 4, 16<<20, func() Config {
					cfg := DefaultConfig()
					if secure {
						cfg.TLS = tlsConfig(b, ca, ca).TLS
					}
					cfg.Transport = tr
					return cfg
				})
			})
		}
	}
}

// benchReduce times all-reduces of bytes on n members configured by cfg
// (called once per member), reporting CPU time per operation too.
func benchReduce(b *testing.B, n, bytes int, cfg func() Config) {
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(b, cfg())
	}
	rings := joinAll(b, nodes, 1)
	bufs := randomInputs(1, n, bytes/4)
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		for r, err := range reduceAll(rings, uint64(i), bufs) {
			if err != nil {
				b.Fatalf("rank %d: %v", r, err)
			}
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkTCPRingBaseline moves what BenchmarkAllReduce's ring moves per
// link (2(N-1)/N of the buffer) over plain loopback TCP connections
// arranged as the same ring, all at once: the cost floor of the transport.
func BenchmarkTCPRingBaseline(b *testing.B) {
	for _, c := range []struct{ n, bytes int }{{2, 16 << 20}, {4, 16 << 20}} {
		b.Run(fmt.Sprintf("N=%d/bytes=%d", c.n, c.bytes), func(b *testing.B) {
			link := int64(c.bytes * 2 * (c.n - 1) / c.n)
			send, recv := tcpRing(b, c.n)
			b.SetBytes(int64(c.bytes))
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				for j := range send {
					wg.Go(func() { copyN(b, send[j], link, false) })
					wg.Go(func() { copyN(b, recv[j], link, true) })
				}
				wg.Wait()
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

func tcpRing(b *testing.B, n int) (send, recv []net.Conn) {
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		rc, err := lis.Accept()
		if err != nil {
			b.Fatal(err)
		}
		_ = lis.Close()
		b.Cleanup(func() { _ = c.Close(); _ = rc.Close() })
		send, recv = append(send, c), append(recv, rc)
	}
	return send, recv
}

func copyN(b *testing.B, c net.Conn, total int64, read bool) {
	buf := make([]byte, 1<<20)
	for done := int64(0); done < total; {
		chunk := buf[:min(int64(len(buf)), total-done)]
		var k int
		var err error
		if read {
			k, err = c.Read(chunk)
		} else {
			k, err = c.Write(chunk)
		}
		if err != nil {
			b.Error(err)
			return
		}
		done += int64(k)
	}
}
