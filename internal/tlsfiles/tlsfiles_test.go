package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

func TestLoadPlaintext(t *testing.T) {
	c, err := tlsfiles.Load(tlsfiles.Files{})
	if err != nil || c.Server != nil || c.Client != nil || c.Peers(nil) != nil || c.Enabled() {
		t.Fatalf("Load(no files) = %+v, %v; want all nil", c, err)
	}
}

func TestLoadConfigs(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	c, err := tlsfiles.Load(ca.Files(t, t.TempDir(), identity.Worker, "w0"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ca.ID(identity.Worker, "w0"); c.Self != want {
		t.Errorf("Self = %v, want %v", c.Self, want)
	}
	if c.Server.ClientAuth != tls.RequireAnyClientCert || c.Server.VerifyPeerCertificate == nil {
		t.Error("server config does not require and verify client certificates")
	}
	if c.Client.GetClientCertificate == nil || c.Client.VerifyPeerCertificate == nil {
		t.Error("client config lacks its certificate or the server's verification")
	}
	both := c.Peers(nil, identity.Worker)
	if both.GetClientCertificate == nil || both.GetCertificate == nil || both.ClientAuth != tls.RequireAnyClientCert {
		t.Error("both-ends config must present and verify certificates on both ends")
	}
	for _, cfg := range []*tls.Config{c.Server, c.Client, both} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("MinVersion %x, want TLS 1.3", cfg.MinVersion)
		}
	}
}

// TestLoadErrors: each broken set is refused with ErrFiles and a message
// naming the file or the setting at fault.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	good := ca.Files(t, dir, identity.Worker, "w0")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := tlstest.NewCA(t, "other").Files(t, t.TempDir(), identity.Worker, "w0")
	elsewhere := tlstest.NewCAIn(t, "elsewhere", "example.org").Files(t, t.TempDir(), identity.Worker, "w0")
	noID := filepath.Join(dir, "noid.pem")
	tlstest.WritePEM(t, noID, "CERTIFICATE", ca.Crafted(t, "no SAN").Certificate[0])
	tests := []struct {
		name string
		f    tlsfiles.Files
		want string
	}{
		{"cert only", tlsfiles.Files{Cert: good.Cert}, "together"},
		{"no ca", tlsfiles.Files{Cert: good.Cert, Key: good.Key}, "together"},
		{"bad trust domain", tlsfiles.Files{Cert: good.Cert, Key: good.Key, CA: good.CA, TrustDomain: "Not A Domain"}, "trust domain"},
		{"missing key file", tlsfiles.Files{Cert: good.Cert, Key: filepath.Join(dir, "nope.pem"), CA: good.CA}, "nope.pem"},
		{"ca not pem", tlsfiles.Files{Cert: good.Cert, Key: good.Key, CA: junk}, "junk.pem"},
		{"missing ca", tlsfiles.Files{Cert: good.Cert, Key: good.Key, CA: filepath.Join(dir, "ca2.pem")}, "ca2.pem"},
		{"key swapped with cert", tlsfiles.Files{Cert: good.Key, Key: good.Cert, CA: good.CA}, "key pair"},
		{"certificate of another CA", tlsfiles.Files{Cert: other.Cert, Key: other.Key, CA: good.CA}, "against CA"},
		{"identity of another trust domain", tlsfiles.Files{Cert: elsewhere.Cert, Key: elsewhere.Key, CA: good.CA}, "trust domain \"whorl\""},
		{"no identity", tlsfiles.Files{Cert: noID, Key: good.Key, CA: good.CA}, "noid.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsfiles.Load(tt.f)
			if !errors.Is(err, tlsfiles.ErrFiles) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want ErrFiles naming %q", err, tt.want)
			}
		})
	}
}

// TestAuthorityRoundTrip: a CA written by WriteCA and read back by
// LoadAuthority issues identities that verify against the first.
func TestAuthorityRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a, err := tlsfiles.NewAuthority("whorl CA", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	b, err := tlsfiles.LoadAuthority(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.WriteIdentity(dir, identity.ID{Role: identity.Client, Name: "alice"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tlsfiles.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Self.String() != "spiffe://whorl/client/alice" {
		t.Errorf("Self = %s", c.Self)
	}
	if st, err := os.Stat(filepath.Join(dir, tlsfiles.CAKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, %v; want 0600", st.Mode(), err)
	}
	if _, err := tlsfiles.LoadAuthority(t.TempDir(), ""); !errors.Is(err, tlsfiles.ErrFiles) {
		t.Errorf("LoadAuthority(empty folder) = %v, want ErrFiles", err)
	}
}

// TestRotation: a certificate rewritten on disk is served on the next
// handshake after the re-check interval; a rewrite naming another identity
// is ignored (the last good certificate stays).
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	f := ca.Files(t, dir, identity.Worker, "w0")
	c, err := tlsfiles.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		cert, err := c.Server.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.String()
	}
	first := serial()
	ca.Files(t, dir, identity.Worker, "w0") // the same files, a new certificate and key
	time.Sleep(1100 * time.Millisecond)
	second := serial()
	if second == first {
		t.Fatal("the rotated certificate was not served")
	}
	impostor := ca.Files(t, t.TempDir(), identity.Worker, "w1")
	for _, p := range [][2]string{{impostor.Cert, f.Cert}, {impostor.Key, f.Key}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if got := serial(); got != second {
		t.Fatal("a certificate of another identity replaced the process's own")
	}
}

// TestRequireSelf: a process runs only as its own identity; plaintext has
// none to check.
func TestRequireSelf(t *testing.T) {
	f := tlstest.NewCA(t, "ca").Files(t, t.TempDir(), identity.Worker, "w0")
	c, err := tlsfiles.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireSelf(f, identity.Worker, "w0"); err != nil {
		t.Errorf("own identity refused: %v", err)
	}
	for _, want := range []struct {
		role identity.Role
		name string
	}{{identity.Worker, "w1"}, {identity.Coordinator, "w0"}} {
		err := c.RequireSelf(f, want.role, want.name)
		if err == nil || !strings.Contains(err.Error(), f.Cert) || !strings.Contains(err.Error(), "want spiffe://whorl/"+string(want.role)+"/"+want.name) {
			t.Errorf("RequireSelf(%s/%s) = %v, want the file and the wanted identity named", want.role, want.name, err)
		}
	}
	if err := (tlsfiles.Configs{}).RequireSelf(tlsfiles.Files{}, identity.Worker, "w0"); err != nil {
		t.Errorf("plaintext: %v", err)
	}
}

// TestIssueRefusals: Issue names the setting it refuses and writes nothing.
func TestIssueRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	for _, tc := range []struct {
		c    tlsfiles.IssueConfig
		want string
	}{
		{tlsfiles.IssueConfig{Workers: []string{"w0"}}, "--out"},
		{tlsfiles.IssueConfig{Out: dir}, "nothing to issue"},
		{tlsfiles.IssueConfig{Out: dir, TrustDomain: "whorl", Workers: []string{"a/b"}}, `--workers "a/b"`},
		{tlsfiles.IssueConfig{Out: dir, TrustDomain: "whorl", Workers: []string{"w0"}, Owner: "1:x"}, "--owner"},
	} {
		if err := tlsfiles.Issue(io.Discard, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %q", tc.c, err, tc.want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused Issue made %s: %v", dir, err)
	}
}
