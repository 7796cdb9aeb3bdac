package coordinator

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStartLocalRemembersPorts restarts a group on the same data dirs and
// checks it comes back on the remembered addresses.
func TestStartLocalRemembersPorts(t *testing.T) {
	dir := t.TempDir()
	ports := filepath.Join(dir, "ports.json")
	lc, err := StartLocal(dir, 3, fastConfig(t, nil), RememberPorts(ports))
	if err != nil {
		t.Fatal(err)
	}
	first := lc.Addrs()
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	lc, err = StartLocal(dir, 3, fastConfig(t, nil), RememberPorts(ports))
	if err != nil {
		t.Fatalf("restart on the remembered ports: %v", err)
	}
	defer lc.Close()
	if !slices.Equal(lc.Addrs(), first) {
		t.Errorf("restarted on %v, want the remembered %v", lc.Addrs(), first)
	}
	if _, err := StartLocal(dir, 1, fastConfig(t, nil), RememberPorts(ports)); err == nil ||
		!strings.Contains(err.Error(), "3 coordinators remembered, 1 asked for") {
		t.Errorf("another size on the same ports file: %v", err)
	}
}

// TestStartLocalFailureReleasesEverything occupies one remembered port: the
// start fails naming the ports file, and every other port it opened is free
// again (goleak in TestMain checks no node goroutine is left).
func TestStartLocalFailureReleasesEverything(t *testing.T) {
	dir := t.TempDir()
	ports := filepath.Join(dir, "ports.json")
	lc, err := StartLocal(dir, 3, fastConfig(t, nil), RememberPorts(ports))
	if err != nil {
		t.Fatal(err)
	}
	addrs := lc.Addrs()
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", addrs[2])
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := StartLocal(dir, 3, fastConfig(t, nil), RememberPorts(ports)); err == nil || !strings.Contains(err.Error(), ports) {
		t.Fatalf("start with a remembered port taken: %v, want an error naming %s", err, ports)
	}
	for _, a := range addrs[:2] {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s still held after the failed start: %v", a, err)
			continue
		}
		l.Close()
	}
}

// TestStartLocalNodeFailureStopsTheOthers makes the last node's New fail
// (its data dir is a file): the nodes already running are stopped.
func TestStartLocalNodeFailureStopsTheOthers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c2"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := StartLocal(dir, 3, fastConfig(t, nil))
	if err == nil {
		t.Fatal("StartLocal with an unusable data dir succeeded")
	}
	if !strings.Contains(err.Error(), "c2") {
		t.Errorf("error %v does not name the failing node c2", err)
	}
}
