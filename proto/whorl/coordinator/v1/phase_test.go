package coordinatorv1

import "testing"

// TestEveryPhaseHasALabel keeps the one phase vocabulary complete: a phase
// added to the proto must get a label, and no two phases share one.
func TestEveryPhaseHasALabel(t *testing.T) {
	seen := map[string]Phase{}
	for n := range Phase_name {
		p := Phase(n)
		l, ok := phaseLabels[p]
		if !ok {
			t.Errorf("phase %s has no label", p)
		}
		if q, dup := seen[l]; dup {
			t.Errorf("phases %s and %s share the label %q", p, q, l)
		}
		seen[l] = p
	}
	if Phase_PHASE_FINETUNING.Label() != "fine-tuning" || Phase(99).Label() != "99" {
		t.Errorf("labels: %q, %q", Phase_PHASE_FINETUNING.Label(), Phase(99).Label())
	}
}
