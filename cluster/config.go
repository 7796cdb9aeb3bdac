package cluster

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/whorl-ml/whorl/internal/validate"
)

// Transport is how a lane carries its chunks.
type Transport int

const (
	// Direct carries each lane's chunks on a plain TCP connection (TLS when
	// Config.TLS is set) that the sender opens to the receiver's gRPC port
	// once the receiver accepted the lane over gRPC; the receiver must serve
	// gRPC on Service.Listener. Chunks go from the buffer into the kernel
	// and from the kernel into one pooled buffer, without gRPC's copies and
	// 16 KiB HTTP/2 frames. When the receiver does not offer it (its server
	// does not use Service.Listener), the lane falls back to InStream.
	Direct Transport = iota
	// InStream carries chunks as messages of the gRPC Transfer stream: use it
	// when something between the workers passes HTTP/2 only (a proxy or a
	// service mesh that terminates connections).
	InStream
)

// String names the transport as the worker's flag spells it.
func (t Transport) String() string {
	switch t {
	case Direct:
		return "direct"
	case InStream:
		return "grpc"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// ParseTransport returns the transport that String names.
func ParseTransport(s string) (Transport, error) {
	for _, t := range []Transport{Direct, InStream} {
		if s == t.String() {
			return t, nil
		}
	}
	return 0, fmt.Errorf("transport %q is neither %q nor %q", s, Direct, InStream)
}

// Limits of Config fields.
const (
	// MaxChunkBytes keeps every message under gRPC's default 4 MiB limit.
	MaxChunkBytes = 4<<20 - 4<<10
	// MinChunkBytes is the smallest chunk payload.
	MinChunkBytes = 1 << 10
	// MaxStreams bounds the lanes of a link.
	MaxStreams = 16
)

// Config configures a Service and the rings it joins.
type Config struct {
	// Job names the job; messages from another job are rejected.
	Job string
	// Timeout is the deadline of every collective (and of joining a ring):
	// when a peer dies or stalls, the collective fails within it.
	Timeout time.Duration
	// ChunkBytes is the largest payload of one message (the pipelining
	// unit). On direct lanes every message is its own system call (and TLS
	// record run), so values far below the default cost bandwidth.
	ChunkBytes int
	// Streams is the number of gRPC streams (lanes), each on its own
	// connection, that carry one link of the ring.
	Streams int
	// Transport is how the lanes this Service opens carry their chunks.
	Transport Transport
	// TLS, when set, enables mutual TLS on the server (ServerOptions) and
	// on the lanes this Service dials: it must present this worker's
	// certificate at both ends and verify peers' servers and clients,
	// either by VerifyPeerCertificate (internal/tlsfiles' Peers: SPIFFE
	// identities, workers only) or by RootCAs and ClientCAs. Peers
	// without a client certificate are refused.
	TLS *tls.Config
	// DialTLS, when set, replaces TLS on the lanes this Service dials
	// (e.g. to accept only workers as servers while TLS's accepting end
	// admits more roles, such as health checks).
	DialTLS *tls.Config
	// AuthorizePeer, when set with TLS, is asked about the peer of every
	// lane this Service accepts (the gRPC lane's opener and each direct
	// connection) after the handshake verified its certificate; an error
	// refuses the lane.
	AuthorizePeer func(tls.ConnectionState) error
	// AuthorizeLane, when set with TLS, is asked about every gRPC lane
	// this Service accepts once its opening names the generation and the
	// sender's rank (and the ring of that generation exists here): an
	// error refuses the lane (Unauthenticated). Direct connections are
	// bound to such a lane by its secret token.
	AuthorizeLane func(cs tls.ConnectionState, generation uint64, fromRank int) error
}

// dialTLS is the configuration of the lanes this Service dials.
func (c Config) dialTLS() *tls.Config {
	if c.DialTLS != nil {
		return c.DialTLS
	}
	return c.TLS
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Job:        "default",
		Timeout:    10 * time.Second,
		ChunkBytes: 1<<20 - 4<<10, // with its header, fits a 1 MiB pooled buffer
		Streams:    2,
	}
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	if c.Job == "" {
		p.Addf("Job", "must not be empty")
	}
	if c.Timeout <= 0 {
		p.Addf("Timeout", "= %v, must be positive", c.Timeout)
	}
	validate.InRange(p, "ChunkBytes", c.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	validate.InRange(p, "Streams", c.Streams, 1, MaxStreams)
	validate.OneOf(p, "Transport", c.Transport, Direct, InStream)
	c.validateTLS(p)
	return p.Err()
}

func (c Config) validateTLS(p *validate.Problems) {
	t := c.TLS
	if t == nil {
		return
	}
	if len(t.Certificates) == 0 && t.GetCertificate == nil {
		p.Addf("TLS.Certificates", "must hold this worker's certificate")
	}
	if t.VerifyPeerCertificate != nil && t.InsecureSkipVerify {
		return // verified by the callback at both ends (SPIFFE)
	}
	if t.RootCAs == nil {
		p.Addf("TLS.RootCAs", "must be set to verify peers (or VerifyPeerCertificate with InsecureSkipVerify)")
	}
	if t.ClientCAs == nil {
		p.Addf("TLS.ClientCAs", "must be set to verify peers' client certificates (or VerifyPeerCertificate with InsecureSkipVerify)")
	}
}
