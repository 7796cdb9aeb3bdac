package session

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// TestWaitOut: FollowJob waits out no leader and the client's retries
// giving up (telling Waiting), but not an answer that is an error, nor
// anything once its context is done.
func TestWaitOut(t *testing.T) {
	live, cancel := context.WithCancel(context.Background())
	dead, kill := context.WithCancel(context.Background())
	kill()
	defer cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{live, nil, false},
		{live, fmt.Errorf("job status via c0: %w", client.ErrNoLeader), true},
		{live, fmt.Errorf("job status via c0: dial: refused (gave up: %w)", context.DeadlineExceeded), true},
		{live, client.ErrNoJob, false},
		{live, errors.New("permission denied"), false},
		{dead, client.ErrNoLeader, false},
	} {
		told := 0
		if got := waitOut(tc.ctx, tc.err, Follow{Waiting: func(error) { told++ }}); got != tc.want || told != map[bool]int{true: 1}[got] {
			t.Errorf("waitOut(%v) = %v (told %d times), want %v", tc.err, got, told, tc.want)
		}
	}
	if l := waitingLine(client.ErrNoLeader); l != "no raft leader known; waiting: "+client.ErrNoLeader.Error() {
		t.Errorf("waiting line %q", l)
	}
}
