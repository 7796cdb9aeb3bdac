package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

// TestCertsCommand: `whorl certs` makes a CA and identities that a real
// mutual-TLS coordinator accepts (`whorl health` with a client's and a
// worker's certificate), reuses the CA for more identities, and refuses
// names that are not SPIFFE path segments.
func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	out, err := runWhorl(t, "certs", "--out", dir, "--coordinators", "c0", "--workers", "w0", "--clients", "admin")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, want := range []string{"spiffe://whorl/coordinator/c0", "spiffe://whorl/worker/w0", "spiffe://whorl/client/admin", "ca-key.pem"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	files := func(name string) tlsfiles.Files {
		return tlsfiles.Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: filepath.Join(dir, "ca.pem")}
	}
	base := coordinator.DefaultConfig()
	base.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base, coordinator.NodeTLS(func(string) tlsfiles.Files { return files("coordinator-c0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if _, err := lc.Leader(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"client-admin", "worker-w0"} {
		f := files(who)
		out, err := runWhorl(t, "health", "--addr", lc.Addrs()[0], "--service", coordinator.LivenessService,
			"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA)
		if err != nil || !strings.Contains(out, "SERVING") {
			t.Errorf("health with %s's certificate: %v %s", who, err, out)
		}
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runWhorl(t, "certs", "--out", dir, "--workers", "w1"); err != nil || strings.Contains(out, "CA ") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(again, ca) {
		t.Error("a second run replaced the CA")
	}
	if c, err := tlsfiles.Load(files("worker-w1")); err != nil || c.Self.String() != "spiffe://whorl/worker/w1" {
		t.Errorf("the second run's worker: %v, %v", c.Self, err)
	}
	for _, bad := range [][]string{{"--workers", "w 1"}, {"--clients", "a/b"}, {}} {
		args := append([]string{"certs", "--out", dir}, bad...)
		if out, err := runWhorl(t, args...); err == nil {
			t.Errorf("certs %q accepted:\n%s", bad, out)
		} else if len(bad) > 0 && !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("certs %q: %v, want the flag named", bad, err)
		}
	}
}

// TestCertsDirsLayout: --layout dirs writes each identity into a folder of
// its own (tls.crt, tls.key, ca.crt; the folder and the key owner-only)
// that loads as that identity and holds no other key, into a folder that
// already exists (a mounted volume), and --owner hands them to a user;
// a malformed --owner is refused naming the flag.
func TestCertsDirsLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "worker-w0"), 0o755); err != nil { // as a mounted volume
		t.Fatal(err)
	}
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	out, err := runWhorl(t, "certs", "--out", dir, "--layout", "dirs", "--owner", owner, "--workers", "w0", "--clients", "submit")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, c := range []struct{ folder, id string }{{"worker-w0", "spiffe://whorl/worker/w0"}, {"client-submit", "spiffe://whorl/client/submit"}} {
		d := filepath.Join(dir, c.folder)
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "ca.crt tls.crt tls.key" {
			t.Errorf("%s holds %v, want ca.crt tls.crt tls.key", c.folder, names)
		}
		for path, want := range map[string]os.FileMode{d: 0o700 | os.ModeDir, filepath.Join(d, "tls.key"): 0o600} {
			if st, err := os.Stat(path); err != nil || st.Mode() != want {
				t.Errorf("%s: mode %v (%v), want %v", path, st.Mode(), err, want)
			}
		}
		f := tlsfiles.Files{Cert: filepath.Join(d, "tls.crt"), Key: filepath.Join(d, "tls.key"), CA: filepath.Join(d, "ca.crt")}
		if cfg, err := tlsfiles.Load(f); err != nil || cfg.Self.String() != c.id {
			t.Errorf("%s loads as %v (%v), want %s", c.folder, cfg.Self, err, c.id)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Errorf("the CA key is not beside the folders: %v", err)
	}
	for _, bad := range []string{"65532", "a:b", "-1:0"} {
		if out, err := runWhorl(t, "certs", "--out", dir, "--layout", "dirs", "--owner", bad, "--workers", "w1"); err == nil ||
			!strings.Contains(err.Error(), "--owner") {
			t.Errorf("--owner %q: %v, want it refused naming --owner\n%s", bad, err, out)
		}
	}
}

// TestPlaintextBeyondLoopbackRefused: a coordinator or worker asked to
// serve plaintext on a non-loopback address refuses to start, naming the
// address and the ways out; loopback stays allowed.
func TestPlaintextBeyondLoopbackRefused(t *testing.T) {
	for _, args := range [][]string{
		{"coordinator", "--id", "c0", "--data-dir", t.TempDir(), "--out", t.TempDir(), "--raft-addr", "127.0.0.1:0", "--grpc-addr", "0.0.0.0:0"},
		{"worker", "--id", "w0", "--coordinator", "127.0.0.1:1", "--listen", "0.0.0.0:0"},
	} {
		out, err, _ := runWhorlFor(t, 30*time.Second, args...)
		if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0 is not a loopback address and TLS is off") ||
			!strings.Contains(err.Error(), "--insecure") {
			t.Errorf("whorl %s: %v\n%s", args[0], err, out)
		}
	}
}
