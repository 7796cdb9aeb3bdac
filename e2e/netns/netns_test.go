package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// echoServer accepts on ln and echoes every connection until the test
// ends, then closes the listener and every connection.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
}

// roundTrip dials addr, sends payload, half-closes and reads the echo.
func roundTrip(addr string, payload []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(payload); err != nil {
		return nil, err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	return io.ReadAll(c)
}

func TestDelayProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, echo)
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- NewDelayProxy(echo.Addr().String(), delay).Serve(ctx, ln) }()
			payload := make([]byte, 1<<20)
			_, _ = rand.Read(payload)
			start := time.Now()
			got, err := roundTrip(ln.Addr().String(), payload, 10*time.Second)
			rtt := time.Since(start)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("echo through the proxy: %d bytes differ from the %d sent", len(got), len(payload))
			}
			if rtt < 2*delay {
				t.Errorf("round trip %v through a proxy delaying %v each way: want >= %v", rtt, delay, 2*delay)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// hostSet adds hosts named prefix0..prefix(n-1), removed at the end of t.
func hostSet(t *testing.T, n *Network, prefix string, count int) []*Host {
	t.Helper()
	ctx := context.Background()
	var hosts []*Host
	for i := range count {
		h, err := n.AddHost(ctx, fmt.Sprintf("%s%d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
		t.Cleanup(func() {
			if err := h.Remove(context.Background()); err != nil {
				t.Errorf("remove host %s: %v", h.Name, err)
			}
		})
	}
	return hosts
}

// relay starts a proxy on h that forwards to target and returns its
// address once it accepts.
func relay(t *testing.T, h *Host, port int, target string, delay time.Duration) (string, *Proc) {
	t.Helper()
	addr := net.JoinHostPort(h.Addr.String(), fmt.Sprint(port))
	p, err := StartProxy(h, filepath.Join(t.TempDir(), h.Name+".log"), addr, target, delay, true)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, p
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy on %s does not accept: %v\n%s", addr, err, p.Tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHosts checks that the driver and hosts reach each other only over the
// bridge, that faults cut and restore exactly that, and that removal leaves
// no namespace or process behind.
func TestHosts(t *testing.T) {
	n := Require(t)
	echo, err := net.Listen("tcp", net.JoinHostPort(Driver().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, echo)
	hosts := hostSet(t, n, "t", 2)
	a, b := hosts[0], hosts[1]
	// driver -> a -> b -> driver: every hop crosses the bridge.
	bAddr, _ := relay(t, b, 9000, echo.Addr().String(), 0)
	aAddr, aProc := relay(t, a, 9000, bAddr, 0)
	reach := func(addr string) error {
		got, err := roundTrip(addr, []byte("whorl"), 2*time.Second)
		if err == nil && string(got) != "whorl" {
			err = fmt.Errorf("echo %q", got)
		}
		return err
	}
	if err := reach(aAddr); err != nil {
		t.Fatalf("driver -> a -> b -> driver: %v", err)
	}
	ctx := context.Background()
	faults := []struct {
		name        string
		make, clear func(context.Context) error
	}{
		{"isolate", b.Isolate, b.Heal},
		{"link down", b.LinkDown, b.LinkUp},
	}
	for _, f := range faults {
		if err := f.make(ctx); err != nil {
			t.Fatal(err)
		}
		if err := reach(aAddr); err == nil {
			t.Errorf("%s b: the path through b still works", f.name)
		}
		if err := f.clear(ctx); err != nil {
			t.Fatal(err)
		}
		if err := reach(aAddr); err != nil {
			t.Errorf("after %s b was cleared: %v", f.name, err)
		}
	}
	// A host killed with SIGKILL loses its processes.
	if err := a.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := aProc.Wait(5 * time.Second); errors.Is(err, ErrRunning) {
		t.Errorf("a's proxy survived SIGKILL of the host: %v", err)
	}
}

func TestLoss(t *testing.T) {
	n := Require(t)
	echo, err := net.Listen("tcp", net.JoinHostPort(Driver().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, echo)
	h := hostSet(t, n, "l", 1)[0]
	addr, _ := relay(t, h, 9000, echo.Addr().String(), 0)
	ctx := context.Background()
	if err := h.Loss(ctx, 50); err != nil {
		t.Fatal(err)
	}
	// A connect needs the SYN and the SYN-ACK through: about 1 in 4 get both
	// at the first try; retries take 1 s, past the timeout.
	const tries = 80
	var ok, wg = make(chan bool, tries), sync.WaitGroup{}
	for range tries {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
			if err == nil {
				c.Close()
			}
			ok <- err == nil
		})
	}
	wg.Wait()
	close(ok)
	got := 0
	for v := range ok {
		if v {
			got++
		}
	}
	if got < tries/20 || got > tries*3/5 {
		t.Errorf("50%% loss each way: %d of %d connects succeeded, want about a quarter", got, tries)
	}
	if err := h.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(addr, []byte("x"), 2*time.Second); err != nil {
		t.Errorf("after healing: %v", err)
	}

}

func TestSetHosts(t *testing.T) {
	n := Require(t)
	h := hostSet(t, n, "h", 1)[0]
	if err := h.SetHosts(fmt.Sprintf("127.0.0.1 localhost\n%s pod-0.svc\n", h.Addr)); err != nil {
		t.Fatal(err)
	}
	out, err := h.Command(context.Background(), "getent", "hosts", "pod-0.svc").Output()
	if err != nil || !strings.HasPrefix(string(out), h.Addr.String()+" ") {
		t.Fatalf("getent hosts pod-0.svc on the host: %q, %v; want %s", out, err, h.Addr)
	}
	if out, err := exec.Command("getent", "hosts", "pod-0.svc").Output(); err == nil {
		t.Errorf("the root namespace resolves the host's private name: %q", out)
	}
}

func TestRemoveLeavesNothing(t *testing.T) {
	n := Require(t)
	ctx := context.Background()
	h, err := n.AddHost(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetHosts("127.0.0.1 localhost\n"); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(filepath.Join(t.TempDir(), "sleep.log"), "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); errors.Is(err, ErrRunning) {
		t.Fatalf("process of a removed host: %v", err)
	}
	names, err := namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if ns == h.NS {
			t.Fatalf("namespace %s still exists after Remove", ns)
		}
	}
	if _, err := os.Stat(filepath.Join(etcNetns, h.NS)); !os.IsNotExist(err) {
		t.Errorf("%s survives Remove: %v", filepath.Join(etcNetns, h.NS), err)
	}
	out, err := output(ctx, nil, "ip", "-n", n.bridgeNS(), "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), " "+h.link+"@") {
		t.Errorf("bridge still has the link of the removed host:\n%s", out)
	}
}

// TestProxyToggle checks that SIGUSR1 switches a proxy helper's delay on
// and off while connections come and go.
func TestProxyToggle(t *testing.T) {
	n := Require(t)
	echo, err := net.Listen("tcp", net.JoinHostPort(Driver().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, echo)
	h := hostSet(t, n, "p", 1)[0]
	const delay = 150 * time.Millisecond
	addr := net.JoinHostPort(h.Addr.String(), "9000")
	p, err := StartProxy(h, filepath.Join(t.TempDir(), "proxy.log"), addr, echo.Addr().String(), delay, false)
	if err != nil {
		t.Fatal(err)
	}
	rtt := func() time.Duration {
		t.Helper()
		start := time.Now()
		var err error
		for time.Since(start) < 10*time.Second {
			s := time.Now()
			if _, err = roundTrip(addr, []byte("x"), 5*time.Second); err == nil {
				return time.Since(s)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no round trip through the proxy: %v\n%s", err, p.Tail(10))
		return 0
	}
	for i, want := range []bool{false, true, false} {
		if i > 0 {
			p.Signal(syscall.SIGUSR1)
			time.Sleep(200 * time.Millisecond)
		}
		got := rtt()
		if delayed := got >= 2*delay; delayed != want {
			t.Errorf("round trip %d took %v: delayed %v, want %v (delay %v each way)", i, got, delayed, want, delay)
		}
	}
}
