package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

func init() { register(newCertsCmd) }

// certsOptions are the flags of `whorl certs`.
type certsOptions struct {
	out, trustDomain               string
	coordinators, workers, clients []string
	hosts                          []string
	validity                       time.Duration
	layout, owner                  string
}

// Layouts of `whorl certs --layout`.
const (
	layoutFiles = "files" // <role>-<name>.pem and -key.pem beside ca.pem
	layoutDirs  = "dirs"  // <role>-<name>/tls.crt, tls.key, ca.crt
)

func newCertsCmd() *cobra.Command {
	var o certsOptions
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a CA and per-identity mTLS certificates for local clusters (compose, kind, tests)",
		Long: `certs writes a certificate authority (ca.pem, ca-key.pem) to --out, or reuses the
one already there, and issues one certificate and key per identity:
coordinator-<id>.pem, worker-<id>.pem, client-<name>.pem (each with -key.pem).
Each certificate's one URI SAN is its SPIFFE ID spiffe://<trust-domain>/<role>/<name>,
which is what whorl checks: a coordinator's name must be its --id (raft peer id), a
worker's its --id, a client's is free (a person or a tool). --hosts adds DNS names or
IPs for tools that check host names; whorl itself does not.

--layout dirs writes each identity into its own folder <role>-<name>/ as tls.crt,
tls.key and ca.crt (a Kubernetes TLS Secret's keys, and what cert-manager's CSI
driver mounts), so that each process can be given its own folder and no other
key: docker-compose.yaml mounts one volume per identity that way. --owner
UID:GID then hands the folders and files to that user (run as root, as the
compose file's one-shot certs service does, with only the CHOWN capability).

Keep ca-key.pem away from the cluster: it can issue any identity. On Kubernetes,
issue the same identities with your own CA (for example cert-manager).`,
		Example: `  whorl certs --out certs --coordinators c0,c1,c2 --workers w0,w1 --clients admin
  whorl coordinator --id c0 --tls-cert certs/coordinator-c0.pem --tls-key certs/coordinator-c0-key.pem --tls-ca certs/ca.pem ...
  whorl certs --out certs --workers w2        # one more worker, same CA
  whorl certs --out /certs --layout dirs --owner 65532:65532 --workers worker-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCerts(cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "folder of the CA and the certificates (created; required)")
	f.StringVar(&o.trustDomain, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain of the identities")
	f.StringSliceVar(&o.coordinators, "coordinators", nil, "coordinator ids (their --id)")
	f.StringSliceVar(&o.workers, "workers", nil, "worker ids (their --id)")
	f.StringSliceVar(&o.clients, "clients", nil, "client names (people or tools that submit and read jobs)")
	f.StringSliceVar(&o.hosts, "hosts", nil, "DNS names or IPs added to every certificate (whorl does not check them)")
	cliflag.Enum(f, &o.layout, "layout", layoutFiles, []string{layoutFiles, layoutDirs},
		"files: <role>-<name>.pem beside ca.pem; dirs: <role>-<name>/tls.crt, tls.key, ca.crt")
	f.StringVar(&o.owner, "owner", "", `UID:GID to own the identities' files and folders ("" = the caller)`)
	cliflag.DurationRange(f, &o.validity, "validity", 365*24*time.Hour, time.Hour, 10*365*24*time.Hour, "how long the certificates are valid")
	return cmd
}

// runCerts makes or loads the CA and issues every identity asked for.
func runCerts(w io.Writer, o certsOptions) error {
	if o.out == "" {
		return errors.New("--out is required")
	}
	ids, err := certIdentities(o)
	if err != nil {
		return err
	}
	uid, gid, err := parseOwner(o.owner)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	ca, made, err := tlsfiles.OpenAuthority(o.out, "whorl CA ("+o.trustDomain+")", o.trustDomain, o.validity)
	if err != nil {
		return err
	}
	if made {
		fmt.Fprintf(w, "CA        %s (key %s: keep it off the cluster)\n", filepath.Join(o.out, tlsfiles.CAFile), filepath.Join(o.out, tlsfiles.CAKeyFile))
	}
	for _, id := range ids {
		write := ca.WriteIdentity
		if o.layout == layoutDirs {
			write = ca.WriteIdentityDir
		}
		f, err := write(o.out, id, o.hosts, o.validity)
		if err != nil {
			return err
		}
		if uid >= 0 {
			if err := chownIdentity(f, o.layout == layoutDirs, uid, gid); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "%-9s %s  --tls-cert %s --tls-key %s --tls-ca %s\n", id.Role, id, f.Cert, f.Key, f.CA)
	}
	return nil
}

// certIdentities validates every name as a SPIFFE path segment.
func certIdentities(o certsOptions) ([]identity.ID, error) {
	var ids []identity.ID
	for _, g := range []struct {
		flag  string
		role  identity.Role
		names []string
	}{{"--coordinators", identity.Coordinator, o.coordinators}, {"--workers", identity.Worker, o.workers}, {"--clients", identity.Client, o.clients}} {
		for _, name := range g.names {
			id, err := identity.New(o.trustDomain, g.role, name)
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
func chownIdentity(f tlsfiles.Files, dir bool, uid, gid int) error {
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
