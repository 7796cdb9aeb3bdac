package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Authorizer admits, at the TLS handshake, a peer whose SPIFFE ID is a
// whorl identity of trust domain td with one of roles (any role when roles
// is empty) and, when allow is not nil, for which allow returns nil. The
// certificate chain has been verified against the trust domain's CA by
// go-spiffe before it is called.
func Authorizer(td spiffeid.TrustDomain, allow func(ID) error, roles ...Role) tlsconfig.Authorizer {
	return func(sid spiffeid.ID, _ [][]*x509.Certificate) error {
		if !sid.MemberOf(td) {
			return fmt.Errorf("peer %s: %w: not of trust domain %q", sid, ErrUnauthenticated, td.Name())
		}
		id, err := FromSPIFFE(sid)
		if err != nil {
			return fmt.Errorf("peer: %w: %w", ErrUnauthenticated, err)
		}
		if len(roles) > 0 && !slices.Contains(roles, id.Role) {
			return fmt.Errorf("peer %s: %w: role %s, want %s", id, ErrPermissionDenied, id.Role, roleList(roles))
		}
		if allow != nil {
			return allow(id)
		}
		return nil
	}
}

// FromConnState returns the identity of a TLS connection's peer (its
// certificate was verified during the handshake).
func FromConnState(cs tls.ConnectionState) (ID, error) {
	if len(cs.PeerCertificates) == 0 {
		return ID{}, fmt.Errorf("%w: no peer certificate", ErrUnauthenticated)
	}
	id, err := FromCert(cs.PeerCertificates[0])
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return id, nil
}

// FromContext returns the identity of a gRPC call's peer. tls is false
// when the connection is plaintext (there is no identity to read).
func FromContext(ctx context.Context) (id ID, tls bool, err error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ID{}, false, fmt.Errorf("%w: no peer information", ErrUnauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ID{}, false, nil
	}
	id, err = FromConnState(info.State)
	if err != nil {
		return ID{}, true, fmt.Errorf("peer %v: %w", p.Addr, err)
	}
	return id, true, nil
}
