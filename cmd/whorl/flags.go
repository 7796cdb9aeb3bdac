package main

import (
	"github.com/spf13/pflag"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// transportFlag defines the flag name, how ring lanes carry their chunks.
func transportFlag(fs *pflag.FlagSet, p *string, name string) {
	cliflag.Enum(fs, p, name, cluster.Direct.String(), []string{cluster.Direct.String(), cluster.InStream.String()},
		"how ring lanes carry chunks: direct TCP beside gRPC on the same port, or inside the gRPC stream")
}

// tlsFlags binds --tls-cert, --tls-key, --tls-ca and --trust-domain to t;
// cert says what the certificate is (e.g. "PEM client certificate").
func tlsFlags(f *pflag.FlagSet, t *tlsfiles.Files, cert string) {
	f.StringVar(&t.Cert, "tls-cert", "", cert+" for mTLS, its SPIFFE ID spiffe://<trust-domain>/<role>/<name> as URI SAN (with --tls-key and --tls-ca; whorl certs makes them)")
	f.StringVar(&t.Key, "tls-key", "", "PEM private key for mTLS")
	f.StringVar(&t.CA, "tls-ca", "", "PEM CA certificate that signs every whorl peer")
	f.StringVar(&t.TrustDomain, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain of every whorl identity")
}

// insecureFlag binds --insecure: plaintext beyond loopback.
func insecureFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "insecure", false, "allow plaintext (no --tls-*) on a non-loopback address: anyone who reaches the ports can call everything")
}
