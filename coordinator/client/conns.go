package client

import (
	"crypto/tls"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ChunkSize is the chunk size of blob and checkpoint streams.
const ChunkSize = 256 << 10

// MaxMessage is the largest gRPC message a coordinator sends or accepts
// (chunks and image batches stay well below it).
const MaxMessage = 16 << 20

// DialOptions are the options of every connection to a coordinator:
// mutual TLS when tlsCfg is set (plaintext otherwise) and the message
// limits of MaxMessage.
func DialOptions(tlsCfg *tls.Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage)),
	}
}

// Conns caches connections to coordinators by address (a Client's, and a
// coordinator's to its peers). It is safe for concurrent use.
type Conns struct {
	tls   *tls.Config
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewConns returns an empty cache dialing with DialOptions(tlsCfg).
func NewConns(tlsCfg *tls.Config) *Conns {
	return &Conns{tls: tlsCfg, conns: map[string]*grpc.ClientConn{}}
}

// Get returns the connection to addr, creating it (grpc connects lazily).
func (p *Conns) Get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, DialOptions(p.tls)...)
	if err != nil {
		return nil, fmt.Errorf("dial coordinator %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// Close closes every connection.
func (p *Conns) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.Close()
		delete(p.conns, addr)
	}
}
