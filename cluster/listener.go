package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Direct connection handshake (see RingService.Transfer in ring.proto).
const (
	directPreface = "WRNG"
	tokenBytes    = 16
	directAck     = 0x01
)

// token names a direct connection that a lane's receiver awaits.
type token [tokenBytes]byte

// directConn is an accepted direct connection: c carries the frames (TLS
// when configured) over the TCP connection raw, which closing unblocks.
type directConn struct {
	c, raw net.Conn
}

// Close closes the TCP connection.
func (d directConn) Close() { _ = d.raw.Close() }

// Listener returns a listener for the worker's gRPC server that also takes
// the ring's direct connections on the same port: every accepted connection
// whose first bytes are the direct preface is handed to the lane that
// awaits it, every other one (HTTP/2 or TLS) to gRPC unchanged. Serving on
// it lets peers with Config.Transport Direct send chunks without gRPC's
// copies; without it their lanes fall back to in-stream chunks. Closing
// the returned listener closes inner.
func (s *Service) Listener(inner net.Listener) net.Listener {
	s.mu.Lock()
	s.direct = true
	s.mu.Unlock()
	m := &muxListener{Listener: inner, svc: s, conns: make(chan net.Conn), done: make(chan struct{}),
		routing: make(map[net.Conn]struct{}), maxPending: MaxPendingConns}
	go m.acceptLoop()
	return m
}

// muxListener routes accepted connections to gRPC or to the ring.
type muxListener struct {
	net.Listener
	svc       *Service
	conns     chan net.Conn // connections for gRPC
	done      chan struct{} // closed when the inner listener failed or was closed
	err       error         // why, set before done is closed
	closeOnce sync.Once

	mu         sync.Mutex
	routing    map[net.Conn]struct{} // connections being sniffed or handshaken
	maxPending int                   // the most routing holds (MaxPendingConns)
	refused    int                   // connections closed at once for want of room
	closed     bool
}

// MaxPendingConns bounds the connections a worker's port holds before they
// have said what they are (the direct preface, or the first bytes of TLS or
// HTTP/2), each for up to Config.Timeout: beyond it a new connection is
// closed at once, so a flood of silent connections costs the worker neither
// a goroutine nor a descriptor each. A ring forming opens Streams
// connections per link and channel, far fewer.
const MaxPendingConns = 1024

// acceptLoop accepts from the inner listener until it fails; each
// connection is sniffed on its own goroutine so a silent client delays no
// one else.
func (m *muxListener) acceptLoop() {
	wait := 5 * time.Millisecond
	for {
		c, err := m.Listener.Accept()
		if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() && !m.isClosed() {
			time.Sleep(wait) // out of file descriptors, say: retry, as net/http does
			wait = min(2*wait, time.Second)
			continue
		}
		if err != nil {
			m.err = err
			close(m.done)
			return
		}
		wait = 5 * time.Millisecond
		if tc, ok := c.(*net.TCPConn); ok {
			// What a worker sends back on accepted connections is small
			// (acknowledgements, TCP ACKs): ahead of bulk data, or the
			// senders' windows stall behind this worker's own buckets.
			setPriority(tc, Control)
		}
		if m.track(c) {
			go m.route(c)
		}
	}
}

// track records c as being routed; false (and c closed) once the listener
// is closed or while maxPending connections are.
func (m *muxListener) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(m.routing) >= m.maxPending {
		if !m.closed {
			m.refused++
		}
		_ = c.Close()
		return false
	}
	m.routing[c] = struct{}{}
	return true
}

func (m *muxListener) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *muxListener) untrack(c net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.routing, c)
}

// Accept returns the next connection for gRPC.
func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, m.err
	}
}

// Close closes the inner listener and the connections not yet routed.
func (m *muxListener) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.Listener.Close()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.closed = true
		for c := range m.routing {
			_ = c.Close()
		}
	})
	return err
}

// route reads the first bytes of c and hands it to the ring or to gRPC.
func (m *muxListener) route(c net.Conn) {
	defer m.untrack(c)
	pre := make([]byte, len(directPreface))
	_ = c.SetReadDeadline(time.Now().Add(m.svc.cfg.Timeout))
	n, err := io.ReadFull(c, pre)
	_ = c.SetReadDeadline(time.Time{})
	if err == nil && string(pre) == directPreface {
		m.svc.acceptDirect(c)
		return
	}
	pc := &prefixConn{Conn: c, pre: pre[:n]}
	select {
	case m.conns <- pc:
	case <-m.done:
		_ = c.Close()
	}
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pre []byte
}

// Read returns the bytes read ahead first.
func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// acceptDirect completes the handshake of a direct connection (TLS, then
// the token) and hands it to the lane awaiting that token; a connection
// that fails the handshake or names no awaited lane is closed.
func (s *Service) acceptDirect(c net.Conn) {
	raw := c
	_ = c.SetDeadline(time.Now().Add(s.cfg.Timeout))
	if s.cfg.TLS != nil {
		tc := tls.Server(c, serverTLS(s.cfg.TLS))
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
		if s.cfg.AuthorizePeer != nil && s.cfg.AuthorizePeer(tc.ConnectionState()) != nil {
			_ = c.Close()
			return
		}
		c = tc
	}
	var tok token
	if _, err := io.ReadFull(c, tok[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	s.mu.Lock()
	ch, ok := s.pending[tok]
	delete(s.pending, tok)
	if ok {
		ch <- directConn{c: c, raw: raw} // buffered; the waiter drains it if it already gave up
	}
	s.mu.Unlock()
	if !ok {
		_ = raw.Close()
	}
}

// offerDirect registers a new token for a direct connection, or reports
// false when this service has no direct listener.
func (s *Service) offerDirect() (token, chan directConn, bool) {
	var tok token
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.direct {
		return tok, nil, false
	}
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails
	ch := make(chan directConn, 1)
	if s.pending == nil {
		s.pending = make(map[token]chan directConn)
	}
	s.pending[tok] = ch
	return tok, ch, true
}

// awaitDirect waits, at most Timeout, for the direct connection presenting
// tok, acknowledges it and returns it.
func (s *Service) awaitDirect(ctx context.Context, tok token, ch chan directConn) (directConn, error) {
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	var d directConn
	select {
	case d = <-ch:
	case <-timer.C:
	case <-ctx.Done():
	}
	s.forget(tok)
	if d.c == nil {
		select {
		case d = <-ch: // arrived as we gave up
		default:
			return d, fmt.Errorf("open direct connection: none presented its token within %v: %w", s.cfg.Timeout, ErrTimeout)
		}
	}
	if err := ackDirect(d.c, s.cfg.Timeout); err != nil {
		d.Close()
		return directConn{}, err
	}
	return d, nil
}

func ackDirect(c net.Conn, timeout time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{directAck}); err != nil {
		return fmt.Errorf("open direct connection: acknowledge: %w: %w", ErrPeer, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return nil
}

// errNoDirectAck is the failure of a direct connection the receiver did not
// acknowledge.
var errNoDirectAck = errors.New("direct connection not acknowledged")

// handshakeDirect performs the sender's side of a direct connection's
// handshake on c: preface, TLS when configured, token, acknowledgement.
func handshakeDirect(c net.Conn, addr string, tok []byte, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(directPreface)); err != nil {
		return nil, err
	}
	if cfg != nil {
		t := cfg.Clone()
		if t.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			t.ServerName = host
		}
		tc := tls.Client(c, t)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if _, err := c.Write(tok); err != nil {
		return nil, err
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDirectAck, err)
	}
	if !bytes.Equal(ack[:], []byte{directAck}) {
		return nil, fmt.Errorf("%w: got byte %#x", errNoDirectAck, ack[0])
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// forget withdraws the offer of tok.
func (s *Service) forget(tok token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, tok)
}
