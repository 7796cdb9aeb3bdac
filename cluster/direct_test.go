package cluster

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// laneKinds reports, for every outgoing lane of every ring, whether it
// carries chunks on a direct connection.
func laneKinds(rings []*Ring) [][]bool {
	out := make([][]bool, len(rings))
	for i, r := range rings {
		for _, l := range r.out {
			out[i] = append(out[i], l.fw != nil)
		}
	}
	return out
}

// TestTransportsGiveIdenticalSums: direct lanes, in-stream lanes and the
// fallback (the receiver's server does not serve the direct Listener) all
// give every member the serial sum in ring order, bit for bit, and each
// lane uses the transport it should.
func TestTransportsGiveIdenticalSums(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transport  Transport
		listener   bool
		wantDirect bool
	}{
		{"direct", Direct, true, true},
		{"in-stream", InStream, true, false},
		{"fallback without listener", Direct, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Transport = tc.transport
			nodes := make([]*node, 3)
			for i := range nodes {
				nodes[i] = startServer(t, cfg, tc.listener)
			}
			rings := joinAll(t, nodes, 1)
			if want := map[bool]int{true: cfg.Streams}[tc.wantDirect]; rings[0].DirectLanes() != want {
				t.Fatalf("DirectLanes() = %d, want %d", rings[0].DirectLanes(), want)
			}
			for i, kinds := range laneKinds(rings) {
				for l, direct := range kinds {
					if direct != tc.wantDirect {
						t.Fatalf("rank %d lane %d direct = %v, want %v", i, l, direct, tc.wantDirect)
					}
				}
			}
			for step, length := range []int{1, 4099, 1<<18 + 3} {
				in := randomInputs(uint64(length), 3, length)
				checkReduce(t, rings, uint64(step), clone(in), ringOrderSum(in))
			}
		})
	}
}

// TestMixedTransportsInOneRing: members that differ in Transport still
// form one ring; each link uses what its sender asked for.
func TestMixedTransportsInOneRing(t *testing.T) {
	direct, inStream := testConfig(), testConfig()
	inStream.Transport = InStream
	nodes := []*node{startNode(t, direct), startNode(t, inStream), startNode(t, direct)}
	rings := joinAll(t, nodes, 1)
	kinds := laneKinds(rings)
	if !kinds[0][0] || kinds[1][0] || !kinds[2][0] {
		t.Fatalf("lane kinds %v, want direct, in-stream, direct", kinds)
	}
	in := randomInputs(5, 3, 10_007)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in))
}

// dialTCP opens a TCP connection to addr, closed at the end of t.
func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestDirectRefusesUnknownTokens: a direct connection whose token no lane
// awaits is closed without the acceptance byte.
func TestDirectRefusesUnknownTokens(t *testing.T) {
	n := startNode(t, testConfig())
	c := dialTCP(t, n.addr)
	_, err := handshakeDirect(c, n.addr, bytes.Repeat([]byte{7}, tokenBytes), nil, time.Second)
	if !errors.Is(err, errNoDirectAck) {
		t.Fatalf("unknown token: %v, want errNoDirectAck", err)
	}
}

// TestDirectRefusesPeersWithoutCertificates: with mutual TLS, a direct
// connection from a peer without a client certificate, or with one another
// CA signed, fails its handshake; members of the cluster's CA use direct
// lanes and reduce correctly.
func TestDirectRefusesPeersWithoutCertificates(t *testing.T) {
	ca, rogue := tlstest.NewCA(t, "whorl"), tlstest.NewCA(t, "rogue")
	nodes := []*node{startNode(t, tlsConfig(t, ca, ca)), startNode(t, tlsConfig(t, ca, ca))}
	rings := joinAll(t, nodes, 1)
	if k := laneKinds(rings); !k[0][0] || !k[1][0] {
		t.Fatalf("lane kinds %v: mutual TLS members should use direct lanes", k)
	}
	in := randomInputs(9, 2, 30_001)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in))
	for name, cfg := range map[string]*tls.Config{
		"no certificate":       {RootCAs: ca.Pool, MinVersion: tls.VersionTLS13},
		"rogue certificate":    tlsConfig(t, rogue, ca).TLS,
		"a client certificate": tlstest.Intruder(t, ca.Issue(t, identity.Client, "alice"), ca),
	} {
		c := dialTCP(t, nodes[0].addr)
		_, err := handshakeDirect(c, nodes[0].addr, make([]byte, tokenBytes), cfg, time.Second)
		if err == nil {
			t.Fatalf("%s: direct connection accepted", name)
		}
		t.Logf("%s refused: %v", name, err)
	}
}

// TestSilentConnectionDelaysNoOne: a client that connects and sends
// nothing does not hold up gRPC connections or direct lanes behind it, and
// is closed when the server stops.
func TestSilentConnectionDelaysNoOne(t *testing.T) {
	cfg := testConfig()
	nodes := startNodes(t, 2, cfg)
	silent, err := net.Dial("tcp", nodes[1].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	rings := joinAll(t, nodes, 1)
	in := randomInputs(1, 2, 1000)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in))
	if took := time.Since(start); took > cfg.Timeout/2 {
		t.Fatalf("join and reduce took %v behind a silent connection", took)
	}
	// Stopping the server closes the connection still being sniffed.
	closeAll(rings)
	nodes[1].gs.Stop()
	_ = silent.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection after the server stopped: %v, want EOF", err)
	}
}

// frame writes the frame of hdr and values with a frameWriter.
func frame(t testing.TB, hdr *ringv1.TransferRequest, values []float32) []byte {
	t.Helper()
	a, b := net.Pipe()
	got := make(chan []byte)
	go func() { all, _ := io.ReadAll(b); got <- all }()
	w := &frameWriter{c: a}
	if err := w.write(&outChunk{hdr: hdr, src: values}); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	return <-got
}

// TestFramesRoundTrip: frames read back into the same header and values;
// a connection closed between frames is io.EOF, inside one an error.
func TestFramesRoundTrip(t *testing.T) {
	vals := []float32{1, -2.5, 3e-3, 65504, -0}
	hdr := &ringv1.TransferRequest{Job: "j", Generation: 3, Sequence: 9, Step: 4, Length: 5, Piece: 2, Encoding: ringv1.Encoding_ENCODING_FLOAT32}
	b := frame(t, hdr, vals)
	b = append(b, b...) // two frames
	r := newFrameReader(bytes.NewReader(b), MaxChunkBytes)
	for range 2 {
		var m inChunk
		if err := r.read(&m); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(vals))
		applyRuns(got, &m, ringv1.Encoding_ENCODING_FLOAT32, false)
		m.release()
		if m.hdr.GetSequence() != 9 || m.hdr.GetPiece() != 2 || !sameBitsF32(got, vals) {
			t.Fatalf("header %v values %v, want %v", &m.hdr, got, vals)
		}
	}
	var m inChunk
	if err := r.read(&m); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	cut := newFrameReader(bytes.NewReader(b[:len(b)-3]), MaxChunkBytes) // inside the second frame
	if err := cut.read(&m); err != nil {
		t.Fatal(err)
	}
	m.release()
	if err := cut.read(&m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("frame cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestFramesRejectMalformed: oversized headers or data and headers that
// carry data are refused before anything is allocated for them.
func TestFramesRejectMalformed(t *testing.T) {
	good := frame(t, &ringv1.TransferRequest{Job: "j", Sequence: 1}, []float32{1, 2})
	withData := frame(t, &ringv1.TransferRequest{Job: "j", Data: []byte{1}}, nil)
	for name, b := range map[string][]byte{
		"huge header": append([]byte{0xff, 0xff, 0, 0, 8, 0, 0, 0}, good[8:]...),
		"huge data":   append([]byte{good[0], good[1], good[2], good[3], 0, 0, 0, 0x40}, good[8:]...),
		"data field":  withData,
	} {
		var m inChunk
		err := newFrameReader(bytes.NewReader(b), MaxChunkBytes).read(&m)
		if !errors.Is(err, errBadChunk) {
			t.Fatalf("%s: %v, want errBadChunk", name, err)
		}
	}
}

// FuzzFrameReader: whatever arrives on a direct connection, reading frames
// never panics, never accepts more than the data bound, and every frame it
// accepts has exactly the data size its prefix announced.
func FuzzFrameReader(f *testing.F) {
	f.Add(frame(f, &ringv1.TransferRequest{Job: "j", Sequence: 1, Length: 2}, []float32{1, 2}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("WRNG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newFrameReader(bytes.NewReader(b), 1<<10)
		for range 8 {
			var m inChunk
			if err := r.read(&m); err != nil {
				return
			}
			if m.size > 1<<10 || m.bufs.Len() < m.size {
				t.Fatalf("accepted %d data bytes in %d buffered", m.size, m.bufs.Len())
			}
			m.release()
		}
	})
}
