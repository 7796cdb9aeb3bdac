package tlsfiles

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/whorl-ml/whorl/internal/identity"
)

// ErrFiles: the TLS files are incomplete or unusable (the message names
// the file).
var ErrFiles = errors.New("invalid TLS files")

// Files are the PEM files of mutual TLS; all empty means plaintext.
type Files struct {
	// Cert and Key are this process's certificate (its SPIFFE ID
	// spiffe://<TrustDomain>/<role>/<name> as the one URI SAN) and private
	// key (PKCS#8, PKCS#1 or SEC 1).
	Cert, Key string
	// CA is the certificate authority that signs every peer.
	CA string
	// TrustDomain is the SPIFFE trust domain of every identity
	// (identity.DefaultTrustDomain when empty).
	TrustDomain string
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate reports files given partly (Cert, Key and CA go together) and a
// malformed trust domain.
func (f Files) Validate() error {
	if f.Enabled() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return fmt.Errorf("%w: TLS needs the certificate, key and CA files together (got cert=%q key=%q ca=%q)",
			ErrFiles, f.Cert, f.Key, f.CA)
	}
	if _, err := f.trustDomain(); err != nil {
		return err
	}
	return nil
}

// trustDomain parses TrustDomain (the default when empty).
func (f Files) trustDomain() (spiffeid.TrustDomain, error) {
	name := f.TrustDomain
	if name == "" {
		name = identity.DefaultTrustDomain
	}
	td, err := spiffeid.TrustDomainFromString(name)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: trust domain %q: %w", ErrFiles, name, err)
	}
	return td, nil
}

// Configs are the TLS configurations of one process's identity. The
// configurations are nil when the files are not Enabled (plaintext).
// Peers are verified by SPIFFE rules (go-spiffe): the chain against the
// CA, the identity from the one URI SAN, no host names.
type Configs struct {
	// Self is this process's identity (zero in plaintext).
	Self identity.ID
	// Server requires a client certificate of any whorl role of the trust
	// domain (each call is then authorized by its server's
	// identity.Policy).
	Server *tls.Config
	// Client presents the certificate and accepts only coordinator servers.
	Client *tls.Config

	src *source
	td  spiffeid.TrustDomain
}

// Load reads and checks the files and returns the configurations (TLS 1.3
// minimum). The certificate, key and CA are re-read when they change on
// disk (certificate rotation without a restart).
func Load(f Files) (Configs, error) {
	if !f.Enabled() {
		return Configs{}, nil
	}
	if err := f.Validate(); err != nil {
		return Configs{}, err
	}
	td, _ := f.trustDomain()
	src, err := newSource(f, td)
	if err != nil {
		return Configs{}, err
	}
	c := Configs{Self: src.self, src: src, td: td}
	c.Server = tlsconfig.MTLSServerConfig(src, src, identity.Authorizer(td, nil))
	c.Server.MinVersion = tls.VersionTLS13
	c.Client = c.ClientOf(identity.Coordinator)
	return c, nil
}

// ClientOf returns a client configuration that presents the certificate
// and accepts servers with one of roles. Nil in plaintext.
func (c Configs) ClientOf(roles ...identity.Role) *tls.Config {
	if !c.Enabled() {
		return nil
	}
	cfg := tlsconfig.MTLSClientConfig(c.src, c.src, identity.Authorizer(c.td, nil, roles...))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// RequireSelf reports, naming the certificate file, a certificate that is
// not role/name (nil in plaintext): a coordinator or a worker runs only as
// its own identity.
func (c Configs) RequireSelf(f Files, role identity.Role, name string) error {
	if !c.Enabled() || (c.Self.Role == role && c.Self.Name == name) {
		return nil
	}
	want := identity.ID{TrustDomain: c.Self.TrustDomain, Role: role, Name: name}
	return fmt.Errorf("TLS certificate %s is %s, want %s", f.Cert, c.Self, want)
}

// Enabled reports whether the configurations are TLS (not plaintext).
func (c Configs) Enabled() bool { return c.src != nil }

// Peers returns a configuration for both ends of a connection between
// peers of one role (raft between coordinators, ring lanes between
// workers): it presents the certificate as server and as client, and
// accepts only peers with one of roles for which allow (when not nil)
// returns nil. Nil in plaintext.
func (c Configs) Peers(allow func(identity.ID) error, roles ...identity.Role) *tls.Config {
	if !c.Enabled() {
		return nil
	}
	auth := identity.Authorizer(c.td, allow, roles...)
	cfg := tlsconfig.MTLSServerConfig(c.src, c.src, auth)
	cfg.GetClientCertificate = tlsconfig.GetClientCertificate(c.src)
	cfg.InsecureSkipVerify = true // go-spiffe verifies the chain and the SPIFFE ID instead of a host name
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}
