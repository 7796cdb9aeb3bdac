// Package tlstest makes throw-away certificate authorities and whorl
// identities for tests of mutual TLS (the ring, the coordinator, the
// multi-process suites): one CA per test, in trust domain "whorl" unless
// told otherwise, leaves valid for an hour. It wraps tlsfiles.Authority
// (the code `whorl certs` runs) and adds crafted certificates for the
// refusal tests.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/whorl-ml/whorl/internal/atomicfile"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// CA is a certificate authority made for one test.
type CA struct {
	*tlsfiles.Authority
	// Pool holds the CA's certificate alone.
	Pool *x509.CertPool
}

// NewCA returns a fresh CA named name for trust domain "whorl".
func NewCA(t testing.TB, name string) *CA { return NewCAIn(t, name, identity.DefaultTrustDomain) }

// NewCAIn returns a fresh CA named name for trust domain td.
func NewCAIn(t testing.TB, name, td string) *CA {
	t.Helper()
	a, err := tlsfiles.NewAuthority(name, td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.Cert)
	return &CA{Authority: a, Pool: pool}
}

// ID returns the identity role/name in the CA's trust domain.
func (ca *CA) ID(role identity.Role, name string) identity.ID {
	return identity.ID{TrustDomain: ca.TrustDomain, Role: role, Name: name}
}

// Issue returns a certificate of role/name, with 127.0.0.1 and localhost
// as host names.
func (ca *CA) Issue(t testing.TB, role identity.Role, name string) tls.Certificate {
	t.Helper()
	c, err := ca.Authority.Issue(ca.ID(role, name), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Files writes role/name's certificate and key to dir beside the CA's
// ca.pem and returns the files.
func (ca *CA) Files(t testing.TB, dir string, role identity.Role, name string) tlsfiles.Files {
	t.Helper()
	f, err := ca.WriteIdentity(dir, ca.ID(role, name), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Configs loads role/name's configurations from files in a fresh folder.
func (ca *CA) Configs(t testing.TB, role identity.Role, name string) tlsfiles.Configs {
	t.Helper()
	c, err := tlsfiles.Load(ca.Files(t, t.TempDir(), role, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Intruder returns a configuration for both ends of a connection that
// presents cert and trusts trusted's CA, accepting any member of its trust
// domain: a peer that knows the cluster's CA but holds a certificate the
// cluster should refuse (another CA's, no identity, another trust domain).
func Intruder(t testing.TB, cert tls.Certificate, trusted *CA) *tls.Config {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString(trusted.TrustDomain)
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{trusted.Cert})
	get := func() (*tls.Certificate, error) { return &cert, nil }
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // verified by go-spiffe below, as whorl's own configurations are
		GetCertificate:        func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return get() },
		GetClientCertificate:  func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get() },
		VerifyPeerCertificate: tlsconfig.VerifyPeerCertificate(bundle, tlsconfig.AuthorizeMemberOf(td)),
	}
}

// Crafted returns a certificate signed by ca whose URI SANs are uris (none
// for a certificate without an identity) and whose common name is cn.
func (ca *CA) Crafted(t testing.TB, cn string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	leaf, err := ca.Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// WritePEM writes one PEM block of type typ to path atomically
// (internal/atomicfile), so a process reading path while it is rewritten
// sees the old or the new file, never a truncated one.
func WritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
