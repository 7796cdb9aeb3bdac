package worker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		field  string // "" means valid
	}{
		{"default", func(*Config) {}, ""},
		{"empty id", func(c *Config) { c.ID = "" }, "ID"},
		{"no coordinator", func(c *Config) { c.Coordinators = nil }, "Coordinators"},
		{"bad coordinator", func(c *Config) { c.Coordinators = []string{"nohost"} }, "Coordinators[0]"},
		{"bad data", func(c *Config) { c.Data = "s3" }, "Data"},
		{"heartbeat too short", func(c *Config) { c.Heartbeat = time.Millisecond }, "Heartbeat"},
		{"wait too long", func(c *Config) { c.AssignmentWait = time.Hour }, "AssignmentWait"},
		{"leave too short", func(c *Config) { c.LeaveTimeout = 0 }, "LeaveTimeout"},
		{"ring timeout", func(c *Config) { c.RingTimeout = time.Hour }, "RingTimeout"},
		{"ring transport", func(c *Config) { c.RingTransport = 9 }, "RingTransport"},
		{"threads", func(c *Config) { c.Threads = -1 }, "Threads"},
		{"partial tls", func(c *Config) { c.TLS.Cert = "a.pem" }, "TLS"},
		{"bad listen", func(c *Config) { c.Listen = "" }, "Listen"},
		{"bad metrics", func(c *Config) { c.MetricsAddr = "9090" }, "MetricsAddr"},
		{"metrics off", func(c *Config) { c.MetricsAddr = "" }, ""},
		{"plaintext beyond loopback", func(c *Config) { c.Listen = "0.0.0.0:7410" }, "Listen"},
		{"plaintext beyond loopback, insecure", func(c *Config) { c.Listen, c.Insecure = "10.0.0.5:7410", true }, ""},
		{"plaintext on localhost", func(c *Config) { c.Listen = "localhost:7410" }, ""},
		{"plaintext on ::1", func(c *Config) { c.Listen = "[::1]:7410" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want ErrConfig naming %s", err, tt.field)
			}
		})
	}
}
