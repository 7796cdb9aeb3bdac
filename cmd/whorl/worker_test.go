package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestWorkerCommandRejectsBadInput runs `whorl worker` with bad flags and
// checks each is refused before anything starts, naming what is wrong.
func TestWorkerCommandRejectsBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--coordinator", "127.0.0.1:7401, nohost"}, "Coordinators[1]"},
		{[]string{"--coordinator", " , "}, "Coordinators must name at least one address"},
		{[]string{"--listen", "nohost"}, "Listen"},
		{[]string{"--data-source", "s3"}, "choose one of local, coordinator"},
		{[]string{"--heartbeat", "1ms"}, "accepted range is 50ms..1m0s"},
		{[]string{"--leave-timeout", "1h"}, "accepted range is 100ms..5m0s"},
		{[]string{"--threads", "-1"}, "accepted range is 0..1024"},
		{[]string{"--tls-cert", "c.pem"}, "TLS needs the certificate, key and CA files together"},
		{[]string{"--id", ""}, "ID must not be empty"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			root := newRootCmd()
			root.SetArgs(append([]string{"worker"}, tt.args...))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("whorl worker %v: %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
