package session

import (
	"fmt"
	"os"
	"time"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// runCertValidity is how long the local cluster's certificates live; they
// are issued again at every start.
const runCertValidity = 7 * 24 * time.Hour

// Certs are the throwaway identities of `whorl run`'s local cluster:
// a CA of the run (made once in its folder, so a resumed run keeps it) and
// a certificate per coordinator, worker and the run's client, so another
// local user cannot join or drive the cluster through its loopback ports.
type Certs struct {
	dir string
	ca  *tlsfiles.Authority
}

// OpenCerts loads the run's CA from dir or makes it there.
func OpenCerts(dir string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ca, _, err := tlsfiles.OpenAuthority(dir, "whorl run CA", "", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return &Certs{dir: dir, ca: ca}, nil
}

// Files issues role/name's certificate and returns its files.
func (c *Certs) Files(role identity.Role, name string) (tlsfiles.Files, error) {
	return c.ca.WriteIdentity(c.dir, identity.ID{Role: role, Name: name}, []string{"127.0.0.1", "localhost"}, runCertValidity)
}
