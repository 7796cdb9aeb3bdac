package tlsfiles

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/whorl-ml/whorl/internal/atomicfile"
	"github.com/whorl-ml/whorl/internal/identity"
)

// Authority is a certificate authority that issues whorl identities (for
// `whorl certs`, local clusters and tests; production clusters use their
// own, such as cert-manager).
type Authority struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// TrustDomain is the trust domain of the identities it issues.
	TrustDomain string
	key         crypto.Signer
}

// CA file names in a certificate folder (WriteCA, LoadAuthority).
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// NewAuthority makes a CA named name for trustDomain, valid for validity.
func NewAuthority(name, trustDomain string, validity time.Duration) (*Authority, error) {
	if trustDomain == "" {
		trustDomain = identity.DefaultTrustDomain
	}
	if _, err := (Files{TrustDomain: trustDomain}).trustDomain(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, TrustDomain: trustDomain, key: key}, nil
}

// Issue returns a certificate for id (its SPIFFE ID as the one URI SAN,
// hosts as DNS or IP SANs for tools that check host names) and its key.
func (a *Authority) Issue(id identity.ID, hosts []string, validity time.Duration) (tls.Certificate, error) {
	id.TrustDomain = a.TrustDomain
	sid := id.SPIFFE()
	if sid.IsZero() {
		return tls.Certificate{}, fmt.Errorf("issue %s: %w", id, identity.ErrBadID)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	u, _ := url.Parse(sid.String())
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: string(id.Role) + "/" + id.Name},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{u},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Sign signs a certificate made from tmpl for pub (tests that need
// certificates Issue would not make: no SAN, another role's path).
func (a *Authority) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = serialNumber()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, pub, a.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// WriteCA writes the CA's certificate and key to dir (ca.pem, ca-key.pem;
// the key readable by the owner only).
func (a *Authority) WriteCA(dir string) error {
	key, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", a.Cert.Raw); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CAKeyFile), "PRIVATE KEY", key)
}

// Identity file names in an identity's own folder (WriteIdentityDir): the
// keys of a Kubernetes TLS Secret and the files cert-manager's CSI driver
// mounts, so one set of --tls-* paths serves compose and Kubernetes.
const (
	DirCertFile = "tls.crt"
	DirKeyFile  = "tls.key"
	DirCAFile   = "ca.crt"
)

// IdentityDir is the folder under dir that WriteIdentityDir fills for id:
// <role>-<name>.
func IdentityDir(dir string, id identity.ID) string {
	return filepath.Join(dir, string(id.Role)+"-"+id.Name)
}

// WriteIdentity issues id's certificate and writes it to dir as
// <role>-<name>.pem and <role>-<name>-key.pem beside the CA's ca.pem, and
// returns the files.
func (a *Authority) WriteIdentity(dir string, id identity.ID, hosts []string, validity time.Duration) (Files, error) {
	base := IdentityDir(dir, id)
	return a.writeIdentity(id, hosts, validity,
		Files{Cert: base + ".pem", Key: base + "-key.pem", CA: filepath.Join(dir, CAFile), TrustDomain: a.TrustDomain})
}

// WriteIdentityDir issues id's certificate and writes it, with the CA's
// certificate, into its own folder IdentityDir(dir, id) (created, owner
// only) as tls.crt, tls.key and ca.crt: a folder that can be handed to
// one process (a compose volume, a Secret) without the others' keys.
func (a *Authority) WriteIdentityDir(dir string, id identity.ID, hosts []string, validity time.Duration) (Files, error) {
	d := IdentityDir(dir, id)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return Files{}, fmt.Errorf("create %s: %w", d, err)
	}
	if err := os.Chmod(d, 0o700); err != nil { // also when it existed (a mounted volume)
		return Files{}, fmt.Errorf("chmod %s: %w", d, err)
	}
	return a.writeIdentity(id, hosts, validity, Files{Cert: filepath.Join(d, DirCertFile), Key: filepath.Join(d, DirKeyFile),
		CA: filepath.Join(d, DirCAFile), TrustDomain: a.TrustDomain})
}

// writeIdentity issues id's certificate and writes it, its key and the CA's
// certificate to f's paths.
func (a *Authority) writeIdentity(id identity.ID, hosts []string, validity time.Duration, f Files) (Files, error) {
	c, err := a.Issue(id, hosts, validity)
	if err != nil {
		return Files{}, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return Files{}, err
	}
	if err := writePEM(f.Cert, "CERTIFICATE", c.Certificate[0]); err != nil {
		return Files{}, err
	}
	if err := writePEM(f.Key, "PRIVATE KEY", key); err != nil {
		return Files{}, err
	}
	if err := writePEM(f.CA, "CERTIFICATE", a.Cert.Raw); err != nil {
		return Files{}, err
	}
	return f, nil
}

// OpenAuthority loads the CA in dir, or makes one named name (valid for
// validity) and writes it there; made reports which.
func OpenAuthority(dir, name, trustDomain string, validity time.Duration) (a *Authority, made bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		a, err := LoadAuthority(dir, trustDomain)
		return a, false, err
	}
	if a, err = NewAuthority(name, trustDomain, validity); err != nil {
		return nil, false, err
	}
	return a, true, a.WriteCA(dir)
}

// LoadAuthority reads a CA that WriteCA wrote to dir.
func LoadAuthority(dir, trustDomain string) (*Authority, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w: %w", dir, ErrFiles, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || pair.Leaf == nil || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("load CA from %s: %w: %s is not a CA certificate with a signing key", dir, ErrFiles, CAFile)
	}
	if trustDomain == "" {
		trustDomain = identity.DefaultTrustDomain
	}
	return &Authority{Cert: pair.Leaf, TrustDomain: trustDomain, key: signer}, nil
}

// writePEM writes one PEM block atomically, readable by the owner only.
func writePEM(path, typ string, der []byte) error {
	if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// serialNumber is a random 128-bit serial (RFC 5280: positive, unique).
func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS's randomness is gone
	}
	return n.Add(n, big.NewInt(1))
}
