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
	hist := []job.EpochStat{{Epoch: 1, Loss: 1.2, Accuracy: 0.4, Seconds: 12.5}}
	// Values that only survive an exact round trip (the resumed epoch's
	// mean must be the uninterrupted one's to the bit).
	partial := []job.StepStat{{Images: 32, Loss: 1.0 / 3, Accuracy: 0.1 + 0.2, Seconds: 0.0123},
		{Images: 32, Loss: 1e-17, Accuracy: 0.5}, {Images: 25, Loss: 2.000000000000001, ClassLoss: 0.7, ClassAccuracy: 0.25}}
	b, err := EncodePretrain(c, n, opt, Progress{Position: job.Position{Epoch: 1, Step: 3}, History: hist, Partial: partial})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := PretrainNet(c, 5)
	opt2 := PretrainOptimizer(c)
	got, err := RestorePretrain(c, b, m, opt2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Position != (job.Position{Epoch: 1, Step: 3}) || !slices.Equal(got.History, hist) || !slices.Equal(got.Partial, partial) {
		t.Errorf("restored %+v, want {1 3} %v %v", got, hist, partial)
	}
	if _, err := EncodePretrain(c, n, opt, Progress{Position: job.Position{Epoch: 1, Step: 2}, Partial: partial}); err == nil {
		t.Error("3 step statistics encoded at step 2")
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
	b, err := EncodePretrain(c, n, PretrainOptimizer(c), Progress{})
	if err != nil {
		t.Fatal(err)
	}
	other := c
	other.Seed++
	m, _ := PretrainNet(other, 5)
	before := slices.Clone(m.Params())
	if _, err := RestorePretrain(other, b, m, PretrainOptimizer(other)); !errors.Is(err, model.ErrCheckpoint) {
		t.Fatalf("restoring another job's checkpoint: %v, want ErrCheckpoint", err)
	}
	if !slices.Equal(m.Params(), before) {
		t.Error("a refused checkpoint changed the network")
	}
}

// TestModelWidthBuildsTheWiderNetwork checks model.width reaches the
// networks: small's blocks are width/4, width/2 and width wide, the pretext
// blocks keep the width, and FeatureNet's head takes the width.
func TestModelWidthBuildsTheWiderNetwork(t *testing.T) {
	c := tinyConfig()
	c.Model.Width, c.Model.PretextBlocks = 192, 1
	pre, err := PretrainNet(c, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"features.0.layers.0.conv.weight": {48, 3, 3, 3},
		"features.1.layers.1.conv.weight": {96, 96, 3, 3},
		"features.2.layers.1.conv.weight": {192, 192, 3, 3},
		"features.3.layers.0.conv.weight": {192, 192, 3, 3},
		"classifier.weight":               {4, 192},
	}
	checkShapes(t, "pretext", pre, want)
	feat, err := FeatureNet(c, pre)
	if err != nil {
		t.Fatal(err)
	}
	if feat.NumBlocks() != 3 {
		t.Errorf("FeatureNet has %d blocks, want 3", feat.NumBlocks())
	}
	delete(want, "features.3.layers.0.conv.weight")
	checkShapes(t, "features", feat, want)
}

func checkShapes(t *testing.T, what string, n *model.Net, want map[string][]int) {
	t.Helper()
	got := map[string][]int{}
	for _, s := range n.Specs() {
		got[s.Name] = s.Shape
	}
	for name, shape := range want {
		if !slices.Equal(got[name], shape) {
			t.Errorf("%s: %s has shape %v, want %v", what, name, got[name], shape)
		}
	}
}

// TestCatalogueMatchesTheEngine pins the job's network vocabulary to the
// engine's (job cannot import model): every model.name builds a network of
// model.Blocks() feature blocks at a size the job accepts, the stems are
// the engine's, and the engine knows no network the job cannot name.
func TestCatalogueMatchesTheEngine(t *testing.T) {
	if names, engine := job.ModelNames(), model.Archs(); !slices.Equal(names, engine) {
		t.Errorf("job.ModelNames() = %v, the engine's architectures %v", names, engine)
	}
	if job.StemImageNet != model.StemImageNet || job.StemSmall != model.StemSmall {
		t.Errorf("stems: job %q/%q, model %q/%q", job.StemImageNet, job.StemSmall, model.StemImageNet, model.StemSmall)
	}
	for _, name := range job.ModelNames() {
		c := job.DefaultConfig()
		c.Model.Name, c.Data.ImageSize = name, job.MinResNetSize
		if c.Model.IsResNet() != model.DefaultConfig(name).IsResNet() {
			t.Errorf("%s: job and model disagree on whether it is a ResNet", name)
		}
		n, err := PretrainNet(c, 5)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if n.NumBlocks() != c.Model.Blocks() {
			t.Errorf("%s: %d feature blocks, job.ModelConfig.Blocks says %d", name, n.NumBlocks(), c.Model.Blocks())
		}
	}
}
