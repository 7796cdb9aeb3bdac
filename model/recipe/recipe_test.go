package recipe

import (
	"errors"
	"slices"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

func tinyConfig() job.Config {
	c := job.DefaultConfig()
	c.Data.ImageSize = 16
	return c
}

// TestPretrainCheckpointRoundTrip encodes a checkpoint and restores it into
// a fresh network and optimiser of the same job.
func TestPretrainCheckpointRoundTrip(t *testing.T) {
	c := tinyConfig()
	n, err := PretrainNet(c, 5)
	if err != nil {
		t.Fatal(err)
	}
	opt := PretrainOptimizer(c)
	for i := range n.Grads() {
		n.Grads()[i] = float32(i%7) * 1e-3
	}
	opt.Step(n.Params(), n.Grads(), 0.1)
	hist := []job.EpochStat{{Epoch: 1, Loss: 1.2, Accuracy: 0.4}}
	b, err := EncodePretrain(c, n, opt, Position{Epoch: 1, Step: 3}, hist)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := PretrainNet(c, 5)
	opt2 := PretrainOptimizer(c)
	pos, got, err := RestorePretrain(c, b, m, opt2)
	if err != nil {
		t.Fatal(err)
	}
	if pos != (Position{1, 3}) || !slices.Equal(got, hist) {
		t.Errorf("restored position %v history %v, want {1 3} %v", pos, got, hist)
	}
	if !slices.Equal(m.Params(), n.Params()) || !slices.Equal(opt2.State(), opt.State()) {
		t.Error("restored weights or optimiser state differ")
	}
}

// TestRestoreRefusesAnotherJob checks a checkpoint of another config (here
// another seed) is refused and leaves the network untouched.
func TestRestoreRefusesAnotherJob(t *testing.T) {
	c := tinyConfig()
	n, _ := PretrainNet(c, 5)
	b, err := EncodePretrain(c, n, PretrainOptimizer(c), Position{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := c
	other.Seed++
	m, _ := PretrainNet(other, 5)
	before := slices.Clone(m.Params())
	if _, _, err := RestorePretrain(other, b, m, PretrainOptimizer(other)); !errors.Is(err, model.ErrCheckpoint) {
		t.Fatalf("restoring another job's checkpoint: %v, want ErrCheckpoint", err)
	}
	if !slices.Equal(m.Params(), before) {
		t.Error("a refused checkpoint changed the network")
	}
}
