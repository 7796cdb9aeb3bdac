package tlsfiles

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/internal/identity"
)

// Layouts of IssueConfig.Layout.
const (
	LayoutFiles = "files" // <role>-<name>.pem and -key.pem beside ca.pem
	LayoutDirs  = "dirs"  // <role>-<name>/tls.crt, tls.key, ca.crt
)

// IssueConfig is what Issue makes: the settings of `whorl certs`, whose
// flags the errors name.
type IssueConfig struct {
	// Out is the folder of the CA and the identities (--out).
	Out string
	// TrustDomain is the identities' SPIFFE trust domain.
	TrustDomain string
	// Coordinators, Workers and Clients are the names to issue, per role.
	Coordinators, Workers, Clients []string
	// Hosts are DNS names or IPs added to every certificate.
	Hosts []string
	// Validity is how long the certificates (and a new CA) are valid.
	Validity time.Duration
	// Layout is LayoutFiles or LayoutDirs.
	Layout string
	// Owner is "UID:GID" to hand each identity's files to ("": the caller).
	Owner string
}

// Issue makes the CA in c.Out (or reuses the one there) and issues every
// identity c names in c.Layout, printing each one's files (and a new CA's)
// to w.
func Issue(w io.Writer, c IssueConfig) error {
	if c.Out == "" {
		return errors.New("--out is required")
	}
	ids, err := issueIdentities(c)
	if err != nil {
		return err
	}
	uid, gid, err := parseOwner(c.Owner)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	ca, made, err := OpenAuthority(c.Out, "whorl CA ("+c.TrustDomain+")", c.TrustDomain, c.Validity)
	if err != nil {
		return err
	}
	if made {
		fmt.Fprintf(w, "CA        %s (key %s: keep it off the cluster)\n", filepath.Join(c.Out, CAFile), filepath.Join(c.Out, CAKeyFile))
	}
	for _, id := range ids {
		write := ca.WriteIdentity
		if c.Layout == LayoutDirs {
			write = ca.WriteIdentityDir
		}
		f, err := write(c.Out, id, c.Hosts, c.Validity)
		if err != nil {
			return err
		}
		if uid >= 0 {
			if err := chownIdentity(f, c.Layout == LayoutDirs, uid, gid); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "%-9s %s  --tls-cert %s --tls-key %s --tls-ca %s\n", id.Role, id, f.Cert, f.Key, f.CA)
	}
	return nil
}

// issueIdentities validates every name as a SPIFFE path segment.
func issueIdentities(c IssueConfig) ([]identity.ID, error) {
	var ids []identity.ID
	for _, g := range []struct {
		flag  string
		role  identity.Role
		names []string
	}{{"--coordinators", identity.Coordinator, c.Coordinators}, {"--workers", identity.Worker, c.Workers}, {"--clients", identity.Client, c.Clients}} {
		for _, name := range g.names {
			id, err := identity.New(c.TrustDomain, g.role, name)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", g.flag, name, err)
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("nothing to issue: give --coordinators, --workers or --clients")
	}
	return ids, nil
}

// parseOwner parses --owner UID:GID (-1, -1 when empty).
func parseOwner(s string) (uid, gid int, err error) {
	if s == "" {
		return -1, -1, nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("--owner %q: want UID:GID, two numbers >= 0", s)
	}
	return uid, gid, nil
}

// chownIdentity hands an identity's certificate, key and CA copy (and, in
// the dirs layout, its folder) to uid:gid. The shared ca.pem of the files
// layout stays the caller's: it is no secret.
func chownIdentity(f Files, dir bool, uid, gid int) error {
	paths := []string{f.Cert, f.Key}
	if dir {
		paths = append(paths, f.CA, filepath.Dir(f.Cert))
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("--owner: %w", err)
		}
	}
	return nil
}
