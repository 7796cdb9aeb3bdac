package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/whorl-ml/whorl/internal/identity"
)

// recheck is how often, at most, the files' modification times are
// compared on a handshake.
const recheck = time.Second

// source serves the certificate and the CA bundle to go-spiffe, re-reading
// the files when one of them changes (a rotation). A rotated set that does
// not load, or names another identity, is ignored: the last good one stays.
type source struct {
	files Files
	td    spiffeid.TrustDomain
	self  identity.ID

	mu      sync.Mutex
	svid    *x509svid.SVID
	bundle  *x509bundle.Bundle
	stamp   [3]time.Time
	checked time.Time
}

// newSource loads the files once; every problem names the file.
func newSource(f Files, td spiffeid.TrustDomain) (*source, error) {
	s := &source{files: f, td: td}
	svid, bundle, self, err := loadFiles(f, td)
	if err != nil {
		return nil, err
	}
	s.svid, s.bundle, s.self, s.stamp, s.checked = svid, bundle, self, stamps(f), time.Now()
	return s, nil
}

// loadFiles reads the key pair and the CA and checks the certificate: a
// whorl SPIFFE ID of the trust domain, signed by the CA, valid now.
func loadFiles(f Files, td spiffeid.TrustDomain) (*x509svid.SVID, *x509bundle.Bundle, identity.ID, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, identity.ID{}, fmt.Errorf("load TLS key pair %s, %s: %w: %w", f.Cert, f.Key, ErrFiles, err)
	}
	svid, err := svidOf(pair)
	if err != nil {
		return nil, nil, identity.ID{}, fmt.Errorf("TLS certificate %s: %w: %w (issue one with `whorl certs`)", f.Cert, ErrFiles, err)
	}
	bundle, err := x509bundle.Load(td, f.CA)
	if err != nil {
		return nil, nil, identity.ID{}, fmt.Errorf("read TLS CA %s: %w: %w", f.CA, ErrFiles, err)
	}
	self, err := identity.FromSPIFFE(svid.ID)
	if err != nil {
		return nil, nil, identity.ID{}, fmt.Errorf("TLS certificate %s: %w: %w", f.Cert, ErrFiles, err)
	}
	if !svid.ID.MemberOf(td) {
		return nil, nil, identity.ID{}, fmt.Errorf("TLS certificate %s: %w: identity %s is not of trust domain %q", f.Cert, ErrFiles, svid.ID, td.Name())
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return nil, nil, identity.ID{}, fmt.Errorf("TLS certificate %s against CA %s: %w: %w", f.Cert, f.CA, ErrFiles, err)
	}
	return svid, bundle, self, nil
}

// svidOf converts a key pair (any key encoding tls accepts) to an X509-SVID.
func svidOf(pair tls.Certificate) (*x509svid.SVID, error) {
	key, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		return nil, err
	}
	var chain []byte
	for _, der := range pair.Certificate {
		chain = append(chain, der...)
	}
	return x509svid.ParseRaw(chain, key)
}

// stamps returns the files' modification times (zero for a missing file).
func stamps(f Files) [3]time.Time {
	var out [3]time.Time
	for i, p := range []string{f.Cert, f.Key, f.CA} {
		if st, err := os.Stat(p); err == nil {
			out[i] = st.ModTime()
		}
	}
	return out
}

// refresh reloads the files when they changed since the last check.
func (s *source) refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < recheck {
		return
	}
	s.checked = time.Now()
	st := stamps(s.files)
	if st == s.stamp {
		return
	}
	svid, bundle, self, err := loadFiles(s.files, s.td)
	if err != nil || self != s.self {
		return // mid-rotation or a wrong file: keep serving the last good set
	}
	s.svid, s.bundle, s.stamp = svid, bundle, st
}

// GetX509SVID returns the current certificate (x509svid.Source).
func (s *source) GetX509SVID() (*x509svid.SVID, error) {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the CA of the trust domain
// (x509bundle.Source); any other trust domain has none.
func (s *source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != s.td {
		return nil, fmt.Errorf("no CA for trust domain %q (this process trusts %q)", td.Name(), s.td.Name())
	}
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle, nil
}
