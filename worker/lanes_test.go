package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

func TestLaneIdentities(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	state := func(role identity.Role, name string) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Issue(t, role, name).Leaf}}
	}
	var l laneIdentities
	l.set(7, []string{"w0", "w1", "w2"})
	tests := []struct {
		name   string
		cs     tls.ConnectionState
		gen    uint64
		from   int
		errHas string
	}{
		{"the rank's worker", state(identity.Worker, "w1"), 7, 1, ""},
		{"another worker", state(identity.Worker, "w2"), 7, 1, `may not send as rank 1 of generation 7 (that is worker "w1")`},
		{"a client named like the worker", state(identity.Client, "w1"), 7, 1, "may not send as rank 1"},
		{"unknown generation", state(identity.Worker, "w1"), 8, 1, "no members of that generation"},
		{"rank out of range", state(identity.Worker, "w1"), 7, 3, "rank 3 of 3"},
		{"no certificate", tls.ConnectionState{}, 7, 1, "no peer certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.authorize(tt.cs, tt.gen, tt.from)
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("authorize = %v, want an error naming %q", err, tt.errHas)
			}
			if !errors.Is(err, identity.ErrPermissionDenied) && !errors.Is(err, identity.ErrUnauthenticated) {
				t.Errorf("authorize = %v, not a sentinel of internal/identity", err)
			}
		})
	}
	l.set(7+keepGenerations, []string{"w0"})
	if err := l.authorize(state(identity.Worker, "w1"), 7, 1); err == nil {
		t.Error("a generation older than keepGenerations is still remembered")
	}
}
