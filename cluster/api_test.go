package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field  string
		mutate func(*Config)
	}{
		{"", func(*Config) {}},
		{"Job", func(c *Config) { c.Job = "" }},
		{"Timeout", func(c *Config) { c.Timeout = 0 }},
		{"ChunkBytes", func(c *Config) { c.ChunkBytes = MaxChunkBytes + 1 }},
		{"ChunkBytes", func(c *Config) { c.ChunkBytes = 10 }},
		{"Streams", func(c *Config) { c.Streams = 0 }},
		{"Streams", func(c *Config) { c.Streams = MaxStreams + 1 }},
		{"Transport", func(c *Config) { c.Transport = 2 }},
		{"TLS.Certificates", func(c *Config) { c.TLS = &tls.Config{} }},
	} {
		cfg := DefaultConfig()
		tc.mutate(&cfg)
		err := cfg.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("default config: %v", err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("bad %s: error %v does not name it", tc.field, err)
		}
	}
	if _, err := NewService(Config{}); err == nil {
		t.Error("NewService accepted a zero Config")
	}
}

func TestParseTransport(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		if got, err := ParseTransport(tr.String()); err != nil || got != tr {
			t.Errorf("ParseTransport(%q) = %v, %v", tr, got, err)
		}
	}
	if _, err := ParseTransport("udp"); err == nil || !strings.Contains(err.Error(), "udp") {
		t.Errorf("ParseTransport(udp) = %v, want an error naming it", err)
	}
}

func TestNewRingChecksMembers(t *testing.T) {
	svc, err := NewService(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		members []string
		rank    int
	}{
		{nil, 0}, {[]string{"a:1"}, 1}, {[]string{"a:1", "a:1"}, 0}, {[]string{"a:1", ""}, 0},
	} {
		if r, err := svc.NewRing(context.Background(), 1, tc.members, tc.rank); err == nil {
			_ = r.Close()
			t.Errorf("members %q rank %d accepted", tc.members, tc.rank)
		}
	}
	r, err := svc.NewRing(context.Background(), 1, []string{"a:1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := []float32{1, 2, 3}
	if err := r.AllReduce(context.Background(), 1, buf); err != nil || buf[2] != 3 {
		t.Fatalf("one-member ring: %v %v", err, buf)
	}
	_ = r.Close()
	if err := r.AllReduceSum(context.Background(), buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("AllReduce after Close: %v, want ErrClosed", err)
	}
}

// TestJoinRetryAfterFailure: a join that fails (the next member is not
// there yet) can be retried with the same generation.
func TestJoinRetryAfterFailure(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	nodes := startNodes(t, 2, cfg)
	if r, err := nodes[0].svc.NewRing(context.Background(), 3, addrs(nodes), 0); !errors.Is(err, ErrTimeout) {
		if r != nil {
			_ = r.Close()
		}
		t.Fatalf("join without the next member: %v, want ErrTimeout", err)
	}
	rings := joinAll(t, nodes, 3)
	in := randomInputs(1, 2, 100)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in))
}

// TestCancelledBeforeStartKeepsRing: a collective whose context is already
// done is refused without breaking the ring.
func TestCancelledBeforeStartKeepsRing(t *testing.T) {
	nodes := startNodes(t, 2, testConfig())
	rings := joinAll(t, nodes, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rings[0].AllReduce(ctx, 1, []float32{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled AllReduce: %v, want context.Canceled", err)
	}
	in := randomInputs(2, 2, 10)
	checkReduce(t, rings, 2, clone(in), ringOrderSum(in))
}
