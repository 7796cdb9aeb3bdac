package session

import (
	"context"
	"runtime"
	"testing"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

// threadsPhases records the engine's thread count during each phase.
type threadsPhases struct {
	coordinator.Phases
	baseline, finetune int
}

func (p *threadsPhases) Baseline(context.Context, []byte) ([]byte, error) {
	p.baseline = model.Threads()
	return []byte("{}"), nil
}

func (p *threadsPhases) FineTune(context.Context, []byte, []byte, []byte, []job.EpochStat) ([]byte, error) {
	p.finetune = model.Threads()
	return []byte("{}"), nil
}

// TestPhasesUseEveryCore: whorl run's local cluster runs the baseline and
// fine-tuning phases with every core even after a worker set the engine to
// its share, and gives the share back afterwards.
func TestPhasesUseEveryCore(t *testing.T) {
	defer model.SetThreads(model.SetThreads(1)) // as a worker of a 2-worker cluster on 2 cores would
	rec := &threadsPhases{}
	p := AllCores{rec}
	if _, err := p.Baseline(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.FineTune(context.Background(), nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	all := runtime.GOMAXPROCS(0)
	if rec.baseline != all || rec.finetune != all {
		t.Errorf("phases ran on %d and %d threads, want every core (%d)", rec.baseline, rec.finetune, all)
	}
	if got := model.Threads(); got != 1 {
		t.Errorf("after the phases the engine has %d threads, want the workers' 1 back", got)
	}
}
