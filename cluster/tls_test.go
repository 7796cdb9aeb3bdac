package cluster

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

// tlsConfig is a worker's configuration as whorl's worker builds it
// (internal/tlsfiles' Peers: workers only): its certificate from issuer,
// trusting peers whose certificates trusted signed.
func tlsConfig(t testing.TB, issuer, trusted *tlstest.CA) Config {
	return roleConfig(t, issuer, trusted, identity.Worker)
}

// roleConfig is tlsConfig with a certificate of role.
func roleConfig(t testing.TB, issuer, trusted *tlstest.CA, role identity.Role) Config {
	cfg := testConfig()
	cfg.Timeout = time.Second
	if issuer == trusted {
		c := issuer.Configs(t, role, "w")
		cfg.TLS, cfg.DialTLS, cfg.AuthorizePeer = c.Peers(nil), c.Peers(nil, identity.Worker), workerLanes
	} else {
		cfg.TLS = tlstest.Intruder(t, issuer.Issue(t, role, "w"), trusted)
	}
	return cfg
}

// workerLanes admits lanes from worker identities only, as the worker does.
func workerLanes(cs tls.ConnectionState) error {
	id, err := identity.FromConnState(cs)
	if err == nil && id.Role != identity.Worker {
		err = identity.ErrPermissionDenied
	}
	return err
}

// TestMutualTLS: members with certificates of the cluster's CA form a ring
// and reduce correctly; a peer whose certificate another CA signed, or one
// without a client certificate, is refused and never gets a lane.
func TestMutualTLS(t *testing.T) {
	ca, rogue := tlstest.NewCA(t, "whorl"), tlstest.NewCA(t, "rogue")
	nodes := []*node{startNode(t, tlsConfig(t, ca, ca)), startNode(t, tlsConfig(t, ca, ca))}
	rings := joinAll(t, nodes, 1)
	in := randomInputs(9, 2, 3001)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in))

	// The intruder trusts the cluster's CA but holds a rogue certificate.
	intruder := startNode(t, tlsConfig(t, rogue, ca))
	members := []string{intruder.addr, nodes[0].addr}
	joined := make(chan error, 1)
	go func() {
		r, err := nodes[0].svc.NewRing(context.Background(), 2, members, 1)
		if err == nil {
			_ = r.Close()
		}
		joined <- err
	}()
	if r, err := intruder.svc.NewRing(context.Background(), 2, members, 0); err == nil {
		_ = r.Close()
		t.Fatal("a member accepted a lane from a peer with a rogue certificate")
	} else {
		t.Logf("rogue client certificate refused: %v", err)
	}
	if err := <-joined; err == nil {
		t.Fatal("a member opened a lane to a server with a rogue certificate")
	} else {
		t.Logf("rogue server certificate refused: %v", err)
	}

	// A client without any certificate, and the cluster CA's certificates
	// of the other roles (only workers open lanes).
	for name, c := range map[string]struct {
		cfg  *tls.Config
		code codes.Code
	}{
		"no certificate":            {&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS13}, codes.Unavailable},
		"a client's certificate":    {tlstest.Intruder(t, ca.Issue(t, identity.Client, "alice"), ca), codes.Unauthenticated},
		"a coordinator certificate": {tlstest.Intruder(t, ca.Issue(t, identity.Coordinator, "c0"), ca), codes.Unauthenticated},
	} {
		cfg := c.cfg
		conn, err := grpc.NewClient(nodes[0].addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Its lane would be a repeat of the open lane 0 (InvalidArgument) if
		// the handshake let it through.
		if _, err := openLane(conn, &outChunk{hdr: rings[1].header(0)}); status.Code(err) != c.code {
			t.Fatalf("lane from a peer with %s: %v, want %v", name, err, c.code)
		} else {
			t.Logf("%s refused: %v", name, err)
		}
	}
}

// openLane opens a lane on conn and waits for its acknowledgement.
func openLane(conn *grpc.ClientConn, hello *outChunk) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stream, err := newRingClient(conn).Transfer(ctx, grpc.CallContentSubtype(codecName))
	if err != nil {
		return false, err
	}
	if err := stream.SendMsg(hello); err != nil {
		return false, err
	}
	_, err = stream.Recv()
	return err == nil, err
}
