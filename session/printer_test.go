package session

import (
	"bytes"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/experiment"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestPrinterNamesTheSelfTrainingStudent prints a baseline's last epoch
// and its student's first: the student's line names its stage and starts
// its own clock, so its epochs are not read as the baseline's again.
func TestPrinterNamesTheSelfTrainingStudent(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b)
	base := pb.Phase_PHASE_BASELINE
	p.Event(experiment.Event{Phase: base, Epoch: 40, Epochs: 40, Step: 8, Steps: 8, Loss: 0.3, Accuracy: 0.9, EpochDone: true})
	p.Event(experiment.Event{Phase: base, Stage: "self-training 1", Epoch: 1, Epochs: 10, Step: 80, Steps: 80, Loss: 1.1, EpochDone: true})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], base.Label()+" ") || !strings.HasPrefix(lines[1], base.Label()+", self-training 1 epoch   1/10") {
		t.Fatalf("printed:\n%s", b.String())
	}
	if len(p.start) != 2 {
		t.Errorf("%d clocks, want one for the baseline and one for its student", len(p.start))
	}
}
