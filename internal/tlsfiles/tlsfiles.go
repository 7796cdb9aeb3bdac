package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrFiles: the TLS files are incomplete or unusable (the message names
// the file).
var ErrFiles = errors.New("invalid TLS files")

// Files are the PEM files of mutual TLS; all empty means plaintext.
type Files struct {
	// Cert and Key are this process's certificate and private key.
	Cert, Key string
	// CA is the certificate authority that signs every peer.
	CA string
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate reports files given partly: Cert, Key and CA go together.
func (f Files) Validate() error {
	if f.Enabled() && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return fmt.Errorf("%w: TLS needs the certificate, key and CA files together (got cert=%q key=%q ca=%q)",
			ErrFiles, f.Cert, f.Key, f.CA)
	}
	return nil
}

// Configs are the three TLS configurations of one certificate. All are nil
// when the files are not Enabled (plaintext).
type Configs struct {
	// Server requires and verifies client certificates signed by the CA.
	Server *tls.Config
	// Client presents the certificate and verifies servers against the CA.
	Client *tls.Config
	// Both serves both ends of a connection (raft's transport, the ring's
	// lanes): the server configuration plus the client's roots.
	Both *tls.Config
}

// Load reads the files and returns the configurations (TLS 1.3 minimum).
func Load(f Files) (Configs, error) {
	if !f.Enabled() {
		return Configs{}, nil
	}
	if err := f.Validate(); err != nil {
		return Configs{}, err
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return Configs{}, fmt.Errorf("load TLS key pair %s, %s: %w: %w", f.Cert, f.Key, ErrFiles, err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return Configs{}, fmt.Errorf("read TLS CA %s: %w: %w", f.CA, ErrFiles, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return Configs{}, fmt.Errorf("TLS CA %s: no PEM certificates: %w", f.CA, ErrFiles)
	}
	c := Configs{
		Server: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13},
		Client: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13},
	}
	c.Both = c.Server.Clone()
	c.Both.RootCAs = pool
	return c, nil
}
