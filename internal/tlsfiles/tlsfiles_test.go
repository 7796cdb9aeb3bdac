package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

func TestLoadPlaintext(t *testing.T) {
	c, err := tlsfiles.Load(tlsfiles.Files{})
	if err != nil || c.Server != nil || c.Client != nil || c.Both != nil {
		t.Fatalf("Load(no files) = %+v, %v; want all nil", c, err)
	}
}

func TestLoadConfigs(t *testing.T) {
	f := tlstest.NewCA(t, "ca").Files(t, t.TempDir(), "node")
	c, err := tlsfiles.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ClientAuth != tls.RequireAndVerifyClientCert || c.Server.ClientCAs == nil {
		t.Error("server config does not require verified client certificates")
	}
	if c.Client.RootCAs == nil || len(c.Client.Certificates) != 1 {
		t.Error("client config lacks the roots or its certificate")
	}
	if c.Both.ClientAuth != tls.RequireAndVerifyClientCert || c.Both.RootCAs == nil || c.Both.ClientCAs == nil {
		t.Error("both-ends config must verify servers and clients")
	}
	for _, cfg := range []*tls.Config{c.Server, c.Client, c.Both} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("MinVersion %x, want TLS 1.3", cfg.MinVersion)
		}
	}
}

// TestLoadErrors: each broken triple is refused with ErrFiles and a message
// naming the file at fault.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := tlstest.NewCA(t, "ca").Files(t, dir, "node")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    tlsfiles.Files
		want string
	}{
		{"cert only", tlsfiles.Files{Cert: good.Cert}, "together"},
		{"no ca", tlsfiles.Files{Cert: good.Cert, Key: good.Key}, "together"},
		{"missing key file", tlsfiles.Files{Cert: good.Cert, Key: filepath.Join(dir, "nope.pem"), CA: good.CA}, "nope.pem"},
		{"ca not pem", tlsfiles.Files{Cert: good.Cert, Key: good.Key, CA: junk}, "junk.pem"},
		{"missing ca", tlsfiles.Files{Cert: good.Cert, Key: good.Key, CA: filepath.Join(dir, "ca2.pem")}, "ca2.pem"},
		{"key swapped with cert", tlsfiles.Files{Cert: good.Key, Key: good.Cert, CA: good.CA}, "key pair"},
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
