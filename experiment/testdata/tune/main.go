// Command tune compares fine-tuning and baseline recipes on the validation
// part of the labeled set (a tuning aid for the presets; not part of whorl).
//
//	go run ./experiment/testdata/tune -data DIR -seed 1 -variants '[{"lr":0.001},{"reinit_blocks":1}]'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

func main() {
	data := flag.String("data", "", "data folder (\"\" = embedded)")
	seed := flag.Uint64("seed", 1, "seed")
	preset := flag.String("preset", "quick", "base preset")
	patch := flag.String("patch", "{}", "JSON merged into the whole config first")
	variants := flag.String("variants", `[{}]`, "JSON list of supervised-config patches for fine-tuning")
	baselines := flag.String("baselines", `[{}]`, "JSON list of supervised-config patches for the baseline")
	from := flag.String("pretrained", "", "pretrained checkpoint to fine-tune (a run's pretrained.safetensors of the same config; \"\" = pretrain here, cached in /tmp)")
	flag.Parse()
	c, err := job.Preset(*preset)
	check(err)
	check(json.Unmarshal([]byte(*patch), &c))
	c.Data.Dir, c.Seed = *data, *seed
	check(c.Validate())
	ctx := context.Background()
	t0 := time.Now()
	d, err := job.LoadData(ctx, c)
	check(err)
	log.Printf("loaded %d images in %v; train %d labeled %d val %d test %d", d.Set.Len(), time.Since(t0),
		len(d.Split.Train), len(d.LabeledTrain), len(d.Validation), len(d.Split.Test))
	var pre *model.Net
	if *from != "" {
		ck, err := model.ReadCheckpoint(*from)
		check(err)
		pre = ck.Net
	} else {
		pre = pretrained(ctx, c, d)
	}
	rot, err := experiment.RotationAccuracy(ctx, pre, d, d.Split.Test)
	check(err)
	fmt.Printf(`{"seed":%d,"variant":"pretext","rot_test":%.4f}`+"\n", c.Seed, rot)
	run := func(phase pb.Phase, p string, from *model.Net) {
		s := c.Supervised
		check(json.Unmarshal([]byte(p), &s))
		cc := c
		cc.Supervised = s
		check(cc.Validate())
		var n *model.Net
		if from == nil {
			n, err = recipe.Net(cc, len(d.Set.Classes), int64(c.Seed)+1000)
			check(err)
		} else {
			n = from.Clone()
			n.ReplaceHead(len(d.Set.Classes), int64(c.Seed)+2000)
			check(experiment.ReinitBlocks(n, s.ReinitBlocks, int64(c.Seed)+3000))
		}
		t := time.Now()
		_, err := experiment.Supervised(ctx, n, d, s, s.FreezeBlocks, c.Seed^0x7375706572766973, phase, nil)
		check(err)
		val, err := experiment.Classify(ctx, n, d, d.Validation)
		check(err)
		test, err := experiment.Classify(ctx, n, d, d.Split.Test)
		check(err)
		fmt.Printf(`{"seed":%d,"kind":%q,"patch":%s,"val":%.4f,"test":%.4f,"seconds":%.0f}`+"\n",
			c.Seed, phase.Label(), p, val.Accuracy(), test.Accuracy(), time.Since(t).Seconds())
	}
	var bs, vs []json.RawMessage
	check(json.Unmarshal([]byte(*baselines), &bs))
	check(json.Unmarshal([]byte(*variants), &vs))
	for _, b := range bs {
		run(pb.Phase_PHASE_BASELINE, string(b), nil)
	}
	for _, v := range vs {
		run(pb.Phase_PHASE_FINETUNING, string(v), pre)
	}
}

// pretrained pretrains (or loads the cached result for the same config).
func pretrained(ctx context.Context, c job.Config, d *job.Data) *model.Net {
	path := fmt.Sprintf("/tmp/whorl-tune-%s.safetensors", job.Digest(c)[:16])
	if ck, err := model.ReadCheckpoint(path); err == nil {
		return ck.Net
	}
	st, err := experiment.NewPretrainState(c, len(d.Set.Classes))
	check(err)
	t := time.Now()
	check(experiment.Pretrain(ctx, c, d, st, nil, func(e experiment.Event) {
		if e.EpochDone {
			log.Printf("pretrain epoch %d loss %.3f acc %.3f (%v)", e.Epoch, e.Loss, e.Accuracy, time.Since(t).Round(time.Second))
		}
	}))
	check(model.SaveCheckpoint(path, st.Net, nil, nil))
	return st.Net
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
