package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

func init() { register(newCertsCmd) }

func newCertsCmd() *cobra.Command {
	var o tlsfiles.IssueConfig
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
			return tlsfiles.Issue(cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "", "folder of the CA and the certificates (created; required)")
	f.StringVar(&o.TrustDomain, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain of the identities")
	f.StringSliceVar(&o.Coordinators, "coordinators", nil, "coordinator ids (their --id)")
	f.StringSliceVar(&o.Workers, "workers", nil, "worker ids (their --id)")
	f.StringSliceVar(&o.Clients, "clients", nil, "client names (people or tools that submit and read jobs)")
	f.StringSliceVar(&o.Hosts, "hosts", nil, "DNS names or IPs added to every certificate (whorl does not check them)")
	cliflag.Enum(f, &o.Layout, "layout", tlsfiles.LayoutFiles, []string{tlsfiles.LayoutFiles, tlsfiles.LayoutDirs},
		"files: <role>-<name>.pem beside ca.pem; dirs: <role>-<name>/tls.crt, tls.key, ca.crt")
	f.StringVar(&o.Owner, "owner", "", `UID:GID to own the identities' files and folders ("" = the caller)`)
	cliflag.DurationRange(f, &o.Validity, "validity", 365*24*time.Hour, time.Hour, 10*365*24*time.Hour, "how long the certificates are valid")
	return cmd
}
