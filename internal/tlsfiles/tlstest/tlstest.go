// Package tlstest makes throw-away certificate authorities and leaf
// certificates for tests of mutual TLS (the ring, the coordinator, the
// multi-process suites): one CA per test, leaves for 127.0.0.1 and
// localhost valid as server and client, valid for an hour.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/internal/atomicfile"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// CA is a certificate authority made for one test.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// Pool holds Cert alone.
	Pool *x509.CertPool
	key  *ecdsa.PrivateKey
}

// serial numbers leaves uniquely within the process.
var serial atomic.Int64

// NewCA returns a fresh CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	cert := create(t, tmpl, tmpl, key, key)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Pool: pool, key: key}
}

// Issue returns a leaf certificate named name for 127.0.0.1 and localhost,
// valid for server and client authentication.
func (ca *CA) Issue(t testing.TB, name string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	leaf := create(t, tmpl, ca.Cert, key, ca.key)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// Files issues a leaf named name and writes it to dir as name.pem and
// name-key.pem, with the CA as ca.pem (rewritten atomically with the same
// bytes when several leaves share dir), and returns the three files.
func (ca *CA) Files(t testing.TB, dir, name string) tlsfiles.Files {
	t.Helper()
	leaf := ca.Issue(t, name)
	keyDER, err := x509.MarshalECPrivateKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	f := tlsfiles.Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"),
		CA: filepath.Join(dir, "ca.pem")}
	WritePEM(t, f.Cert, "CERTIFICATE", leaf.Leaf.Raw)
	WritePEM(t, f.Key, "EC PRIVATE KEY", keyDER)
	WritePEM(t, f.CA, "CERTIFICATE", ca.Cert.Raw)
	return f
}

// WritePEM writes one PEM block of type typ to path atomically
// (internal/atomicfile), so a process reading path while it is rewritten,
// such as a running coordinator reading ca.pem while a test issues the next
// worker's files, sees the old or the new file, never a truncated one.
func WritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
