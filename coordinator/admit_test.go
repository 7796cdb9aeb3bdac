package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

// estimatingPhases are fakePhases that estimate a job's memory as 1 MiB
// per pretraining epoch (so a test picks the estimate by the epochs).
type estimatingPhases struct{ fakePhases }

func (p *estimatingPhases) EstimateMemory(configJSON []byte) (int64, string, error) {
	var c job.Config
	if err := json.Unmarshal(configJSON, &c); err != nil {
		return 0, "", err
	}
	return int64(c.Pretrain.Epochs) << 20, "epochs: that many MiB", nil
}

// TestAdmissionByEstimatedMemory: with a job memory limit, the leader
// refuses at submit (ResourceExhausted, ErrJobTooLarge) a job whose
// estimated peak exceeds it, naming the estimate, its parts and the
// limit, and records nothing; a job within the limit is admitted; without
// a limit every job is.
func TestAdmissionByEstimatedMemory(t *testing.T) {
	for _, c := range []struct {
		name   string
		limit  int64
		epochs int
		ok     bool
	}{
		{"over the limit", 5 << 20, 8, false},
		{"within the limit", 10 << 20, 8, true},
		{"no limit", 0, 8, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := newCluster(t, 1, func(cfg *Config) {
				cfg.Phases = &estimatingPhases{fakePhases{n: 40}}
				cfg.JobMemoryLimit = c.limit
			})
			cl.waitLeader(10 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cc, _ := dialTest(cl.addrs())
			defer cc.Close()
			_, err := cc.SubmitJob(ctx, testConfig(t, c.epochs, 16, 100))
			if c.ok {
				if err != nil {
					t.Fatalf("submit: %v, want it admitted", err)
				}
				return
			}
			if !errors.Is(err, client.ErrJobTooLarge) {
				t.Fatalf("submit: %v, want ErrJobTooLarge", err)
			}
			if st := client.Status(errors.Join(err)); status.Code(st) != codes.ResourceExhausted {
				t.Errorf("ErrJobTooLarge maps to %v, want ResourceExhausted", status.Code(st))
			}
			for _, want := range []string{"8.0 MiB", "epochs: that many MiB", "limit of 5.0 MiB"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q lacks %q", err, want)
				}
			}
			if _, err := cc.FetchResults(ctx, ""); !errors.Is(err, client.ErrNoJob) {
				t.Errorf("after the refusal: %v, want no job recorded", err)
			}
		})
	}
}

// checkingPhases are fakePhases whose data check refuses every job,
// naming a location.
type checkingPhases struct{ fakePhases }

func (p *checkingPhases) CheckData(context.Context, []byte) error {
	return errors.New("s3://nosuchbucket/x: the bucket does not exist")
}

// TestSubmitRefusesDataThatCannotBeOpened: the leader runs the phases'
// data check at submit; a refusal is ErrBadJob (InvalidArgument) naming
// the location, and nothing is recorded.
func TestSubmitRefusesDataThatCannotBeOpened(t *testing.T) {
	cl := newCluster(t, 1, func(cfg *Config) { cfg.Phases = &checkingPhases{fakePhases{n: 40}} })
	cl.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, _ := dialTest(cl.addrs())
	defer cc.Close()
	_, err := cc.SubmitJob(ctx, testConfig(t, 2, 16, 100))
	if !errors.Is(err, client.ErrBadJob) || !strings.Contains(err.Error(), "s3://nosuchbucket/x") {
		t.Fatalf("submit: %v, want ErrBadJob naming the data", err)
	}
	if _, err := cc.FetchResults(ctx, ""); !errors.Is(err, client.ErrNoJob) {
		t.Errorf("after the refusal: %v, want no job recorded", err)
	}
}
