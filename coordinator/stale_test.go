package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestNoStaleReadsWithoutLeader: a coordinator that knows no raft leader
// (its two peers are down) does not pass its own applied state off as the
// job's: JobStatus and FetchResults answer UNAVAILABLE naming its applied
// index, and only a caller that allows a stale answer gets that state,
// marked by an empty leader_id. A restarted node, alone, is the same.
func TestNoStaleReadsWithoutLeader(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Phases = &fakePhases{n: 40} })
	leader := c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	id, err := cl.SubmitJob(ctx, testConfig(t, 2, 16, 100))
	if err != nil {
		t.Fatal(err)
	}
	alone := (leader + 1) % 3
	eventually(t, 10*time.Second, "the job applied on the follower", func() bool {
		var ok bool
		c.node(alone).fsm.View(func(s *State) { ok = s.Job != nil && s.Job.ID == id })
		return ok
	})
	for i := range 3 {
		if i != alone {
			c.stop(i)
		}
	}
	check := func(what string) {
		t.Helper()
		eventually(t, 20*time.Second, what+": no leader known", func() bool { l, _ := c.node(alone).leader(); return l == "" })
		conn, err := grpc.NewClient(c.node(alone).Addr(), client.DialOptions(nil)...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		api := pb.NewCoordinatorServiceClient(conn)
		_, err = api.JobStatus(ctx, &pb.JobStatusRequest{})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "has applied raft index") {
			t.Errorf("%s: JobStatus: %v, want UNAVAILABLE naming the applied index", what, err)
		} else {
			t.Logf("%s: %v", what, err)
		}
		if _, err := api.FetchResults(ctx, &pb.FetchResultsRequest{}); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: FetchResults: %v, want UNAVAILABLE", what, err)
		}
		st, err := api.JobStatus(ctx, &pb.JobStatusRequest{AllowStale: true})
		if err != nil || st.GetLeaderId() != "" {
			t.Errorf("%s: JobStatus allowing stale: %v (leader %q), want the node's own state, no leader", what, err, st.GetLeaderId())
		}
		t.Logf("%s: stale answer allowed: job %q", what, st.GetJobId())
	}
	check("peers down")
	c.stop(alone)
	c.restart(alone)
	check("restarted alone")
}
