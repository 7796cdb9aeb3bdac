package experiment

import (
	"fmt"
	"sort"
	"strings"

	"github.com/whorl-ml/whorl/job"
)

// referenceRow is a published or previously measured result shown beside
// this run's for comparison.
type referenceRow struct {
	what, baseline, finetuned, gain, note string
}

// references are the results report.md compares against: the seed
// experiment and the PyTorch measurement of the same protocol (issue 7).
var references = []referenceRow{
	{"seed experiment: ResNet-18 at 128 px, 60 validation images per class", "72.5", "75.2", "+2.7",
		"reported by the seed project"},
	{"PyTorch 1.13, `small` at 32 px, all 4,311 photos, 10 pretraining epochs, 3 seeds", "63.0 ± 3.6", "68.3 ± 1.9",
		"+5.3 ± 3.4", "rotation test accuracy 74.9%, 260 s on 2 threads"},
	{"PyTorch 1.13, `small` at 32 px, CC-BY 3,480 photos, same recipe, 3 seeds", "64.9 ± 2.8", "67.6 ± 3.7",
		"+2.6 ± 1.0", "rotation test accuracy 74.2%, 211 s on 2 threads"},
	{"whorl `quick` (Go, single-process pretraining loop), all 4,311 photos, seeds 1-3", "63.4 ± 1.3", "68.5 ± 1.6",
		"+5.1 ± 0.6", "rotation test accuracy 74.1%; recipe chosen on validation"},
	{"whorl `quick` (Go, single-process pretraining loop), embedded CC-BY 3,480 photos, seeds 1-3", "65.0 ± 2.1",
		"67.2 ± 3.2", "+2.2 ± 2.7", "rotation test accuracy 73.3%"},
}

// RenderMarkdown renders report.md: the comparison table a person reads.
func RenderMarkdown(r Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# whorl run: rotation pretraining vs. supervised baseline\n\n")
	p("Preset `%s`, network `%s` at %d px, seed %d, data %s. Pretraining ran on %s.\n\n",
		r.Preset, r.Model, r.Dataset.ImageSize, r.Seed, r.Dataset.Source, clusterText(r.Cluster))
	p("Split: %d training images (%d labeled, of which %d held out for validation; %d unlabeled), %d test images, %d classes.\n\n",
		r.Dataset.Train, r.Dataset.Labeled, r.Dataset.Validation, r.Dataset.Unlabeled, r.Dataset.Test, len(r.Dataset.Classes))
	if n := len(r.Dataset.Skipped); n > 0 {
		p("Left out: %d image file(s) that could not be read (at most %g of the files may be: data.max_skipped_fraction):\n\n",
			n, r.Config.Data.MaxSkipped())
		for _, s := range r.Dataset.Skipped {
			p("- `%s`: %s\n", s.Path, s.Reason)
		}
		p("\n")
	}
	p("## Result\n\n")
	p("| model | test accuracy | validation accuracy |\n|---|---|---|\n")
	p("| supervised baseline (from scratch, labeled subset only) | %s | %s |\n", pct(r.Baseline.TestAccuracy), pct(r.Baseline.ValidationAccuracy))
	p("| %s | %s | %s |\n", modeRow(r.Config), pct(r.Finetune.TestAccuracy), pct(r.Finetune.ValidationAccuracy))
	p("| **gain** | **%+.1f points** | %+.1f points |\n\n", 100*r.Gain, 100*(r.Finetune.ValidationAccuracy-r.Baseline.ValidationAccuracy))
	p("Rotation (pretext) accuracy of the pretrained network on the test images: %s. %s\n\n", pct(r.Pretext.TestRotationAccuracy), pretextText(r.Config))
	s := r.Config.Supervised
	recipe := fmt.Sprintf("batch %d, %s lr %g, %s schedule, %s", s.Batch, s.Optimizer, s.LR, s.Schedule.Kind, augText(s.Augmentation))
	if j := r.Config.Joint; r.Config.IsJoint() {
		p("Joint mode (S4L-Rotation): every pretraining step added %g x the cross-entropy of %d labeled images to the rotation loss; the network's class head was then fine-tuned for %d epochs (%s). The baseline trained %d epochs with that recipe.\n\n",
			j.Weight, j.LabeledBatch, j.FinetuneEpochs, recipe, s.Epochs)
	} else {
		p("Both supervised runs use the same recipe: %d epochs, %s.%s\n\n", s.Epochs, recipe, fineTuneText(s))
	}
	renderSelfTraining(&b, r)
	p("## For comparison\n\n| reference | baseline | fine-tuned | gain | note |\n|---|---|---|---|---|\n")
	for _, ref := range references {
		p("| %s | %s | %s | %s | %s |\n", ref.what, ref.baseline, ref.finetuned, ref.gain, ref.note)
	}
	p("| **this run** | %.1f | %.1f | %+.1f | rotation test accuracy %s, %.0f s in total |\n\n",
		100*r.Baseline.TestAccuracy, 100*r.Finetune.TestAccuracy, 100*r.Gain, pct(r.Pretext.TestRotationAccuracy), r.Timing.TotalSeconds)
	renderFrozen(&b, r)
	renderPerClass(&b, r)
	renderConfusion(&b, "baseline", r.Dataset.Classes, r.Baseline.Confusion)
	renderConfusion(&b, "fine-tuned", r.Dataset.Classes, r.Finetune.Confusion)
	p("## Timing\n\n| phase | seconds |\n|---|---|\n")
	p("| pretraining (%.0f samples/s) | %.1f |\n| baseline | %.1f |\n| fine-tuning and evaluation | %.1f |\n",
		r.Timing.PretrainSamplesPerSecond, r.Timing.PretrainSeconds, r.Timing.BaselineSeconds, r.Timing.FinetuneSeconds)
	if r.SelfTraining != nil {
		p("| self-training (both arms) | %.1f |\n", r.Timing.SelfTrainSeconds)
	}
	p("| total | %.1f |\n", r.Timing.TotalSeconds)
	if len(r.Files) > 0 {
		p("\n## Files\n\n")
		keys := make([]string, 0, len(r.Files))
		for k := range r.Files {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("- %s: `%s`\n", k, r.Files[k])
		}
	}
	return b.String()
}

// pretextText says what the pretext saw: how many images, how rendered.
func pretextText(c job.Config) string {
	pc := c.Pretrain
	held := ""
	if c.Data.Stored() != c.Data.ImageSize {
		held = fmt.Sprintf(", rendered from photos held at %d px", c.Data.Stored())
	}
	extra := ""
	if k := c.Model.PretextBlocks; k > 0 {
		extra = fmt.Sprintf(" Its network had %d feature block(s) beyond %s's %d, dropped before fine-tuning and the frozen-feature evaluations.",
			k, c.Model.Name, c.Model.Blocks())
	}
	return fmt.Sprintf("The pretext saw %d epochs of %d images x 4 rotations per step at %s%s; augmentation before rotating: %s.%s",
		pc.Epochs, pc.GlobalBatch, sizesText(c), held, augText(pc.Augmentation), extra)
}

// sizesText is the pretraining's image sides: "32 px", or the resolution
// curriculum's runs of epochs, such as "24 px (6 epochs), then 48 px (4
// epochs)".
func sizesText(c job.Config) string {
	sizes := c.PretrainSizes()
	if len(c.Pretrain.Curriculum) == 0 || len(sizes) == 0 {
		return fmt.Sprintf("%d px", c.Data.ImageSize)
	}
	var parts []string
	for lo := 0; lo < len(sizes); {
		hi := lo
		for hi < len(sizes) && sizes[hi] == sizes[lo] {
			hi++
		}
		parts = append(parts, fmt.Sprintf("%d px (%d epochs)", sizes[lo], hi-lo))
		lo = hi
	}
	return strings.Join(parts, ", then ")
}

// augText describes an augmentation in the order it applies.
func augText(a job.AugmentConfig) string {
	var parts []string
	switch {
	case len(a.CropScale) == 2:
		ratio := a.CropRatio
		if len(ratio) != 2 {
			ratio = job.DefaultCropRatio
		}
		parts = append(parts, fmt.Sprintf("random-resized crop of %g-%g of the area (aspect %.2f-%.2f)",
			a.CropScale[0], a.CropScale[1], ratio[0], ratio[1]))
	case a.CropPad > 0:
		parts = append(parts, fmt.Sprintf("crop pad %d", a.CropPad))
	}
	if a.Flip {
		parts = append(parts, "flip")
	}
	if j := a.ColorJitter; j.Prob > 0 {
		parts = append(parts, fmt.Sprintf("colour jitter %g/%g/%g (brightness/contrast/saturation) with probability %g",
			j.Brightness, j.Contrast, j.Saturation, j.Prob))
	}
	if a.Grayscale > 0 {
		parts = append(parts, fmt.Sprintf("grayscale with probability %g", a.Grayscale))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func clusterText(c ClusterInfo) string {
	if c.Coordinators == 0 {
		return fmt.Sprintf("%d worker in one process (no coordinator)", c.Workers)
	}
	return fmt.Sprintf("%d workers and %d coordinator(s) on loopback", c.Workers, c.Coordinators)
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func renderPerClass(b *strings.Builder, r Report) {
	rot := len(r.Pretext.PerClassRotation) > 0
	fmt.Fprintf(b, "## Per class (test accuracy)\n\n| class | baseline | fine-tuned | gain |")
	if rot {
		b.WriteString(" rotation (pretext) |")
	}
	b.WriteString("\n|---|---|---|---|" + map[bool]string{true: "---|"}[rot] + "\n")
	for _, c := range r.Dataset.Classes {
		base, ft := r.Baseline.PerClass[c], r.Finetune.PerClass[c]
		fmt.Fprintf(b, "| %s | %s | %s | %+.1f |", c, pct(base), pct(ft), 100*(ft-base))
		if rot {
			fmt.Fprintf(b, " %s |", pct(r.Pretext.PerClassRotation[c]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func renderConfusion(b *strings.Builder, name string, classes []string, c Confusion) {
	fmt.Fprintf(b, "## Confusion matrix, %s (rows: true class, columns: predicted)\n\n| |", name)
	for _, cl := range classes {
		fmt.Fprintf(b, " %s |", cl)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(classes)) + "\n")
	for i, row := range c {
		if i >= len(classes) {
			break
		}
		fmt.Fprintf(b, "| %s |", classes[i])
		for _, v := range row {
			fmt.Fprintf(b, " %d |", v)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// fineTuneText says what fine-tuning does beyond the shared recipe ("" when
// nothing: every layer kept and trained at one rate).
func fineTuneText(s job.SupervisedConfig) string {
	var parts []string
	if s.ReinitBlocks > 0 {
		parts = append(parts, fmt.Sprintf("re-initialised the last %d feature block(s)", s.ReinitBlocks))
	}
	if s.FreezeBlocks > 0 {
		parts = append(parts, fmt.Sprintf("kept the first %d frozen", s.FreezeBlocks))
	}
	if s.BodyLRScale != 0 && s.BodyLRScale != 1 {
		parts = append(parts, fmt.Sprintf("trained the pretrained blocks at %gx the learning rate", s.BodyLRScale))
	}
	if len(parts) == 0 {
		return ""
	}
	return " Fine-tuning " + strings.Join(parts, ", ") + "."
}

// modeRow names the model compared with the baseline.
func modeRow(c job.Config) string {
	if c.IsJoint() {
		return "trained jointly on rotations and the labeled subset (S4L)"
	}
	return "rotation-pretrained, fine-tuned on the same subset"
}

// renderFrozen renders the frozen-feature table: per block, the test
// accuracy of the linear probe and of the kNN of every evaluated network.
func renderFrozen(b *strings.Builder, r Report) {
	if len(r.Frozen) == 0 {
		return
	}
	e := r.Config.Eval
	fmt.Fprintf(b, "## Frozen features, block by block (test accuracy)\n\n")
	pooled := "global-average-pooled"
	if e.ProbeDims > 0 {
		pooled = fmt.Sprintf("average-pooled to the largest grid of at most %d values", e.ProbeDims)
	}
	fmt.Fprintf(b, "Each block's output, %s, of the rotation-pretrained network, the supervised baseline and a randomly initialised network of the same architecture (the floor; its BatchNorm statistics recomputed on the training images).", pooled)
	switch {
	case e.LinearProbes && e.ProbeFolds > 0:
		fmt.Fprintf(b, " Linear probe: softmax regression on the standardised features of the %d labeled images, its L2 penalty chosen by %d-fold cross-validation among them.",
			r.Dataset.Labeled, e.ProbeFolds)
	case e.LinearProbes:
		fmt.Fprintf(b, " Linear probe: softmax regression on the standardised features of the %d labeled training images, its L2 penalty chosen on the %d validation images.",
			r.Dataset.Labeled-r.Dataset.Validation, r.Dataset.Validation)
	}
	if e.KNN {
		fmt.Fprintf(b, " kNN: the %d most cosine-similar labeled training images vote, weighted exp(similarity/%g).", e.KNNK, e.KNNTemperature)
	}
	b.WriteString("\n\n")
	renderFrozenTable(b, aggregateFrozen([]Report{r}), func(s Stat) string { return pct(s.Mean) })
	if name := r.Files["probes"]; name != "" {
		fmt.Fprintf(b, "The same as a picture: `%s`.\n\n", name)
	}
}

// renderSelfTraining renders the self-training section: both arms with and
// without it, and the pseudo-labels of the last round.
func renderSelfTraining(b *strings.Builder, r Report) {
	s := r.SelfTraining
	if s == nil {
		return
	}
	st := r.Config.SelfTrain
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Self-training (both arms alike)\n\n")
	p("In each of %d round(s), each arm's classifier labeled the %d unlabeled training photos; those it was most sure of (probability at least %g, at most %.0f%% of them, balanced over the classes) joined the labeled images as pseudo-labels, and a student starting where its arm started (the baseline from scratch, the fine-tuning from the pretrained network) trained on both for %d epochs with the supervised recipe. The gain below still compares like with like.\n\n",
		st.Rounds, r.Dataset.Unlabeled, st.MinConfidence, 100*st.Keep, st.Epochs)
	p("| arm | test accuracy without | with self-training | validation with | pseudo-labels kept (last round) | of them right |\n|---|---|---|---|---|---|\n")
	row := func(name string, without ModelResult, with SelfTrainResult) {
		kept, right := "-", "-"
		if n := len(with.Rounds); n > 0 {
			last := with.Rounds[n-1]
			kept, right = fmt.Sprintf("%d of %d", last.KeptTotal(), last.Candidates), pct(last.Accuracy)
		}
		p("| %s | %s | %s | %s | %s | %s |\n", name, pct(without.TestAccuracy), pct(with.Result.TestAccuracy),
			pct(with.Result.ValidationAccuracy), kept, right)
	}
	row("supervised baseline", r.Baseline, s.Baseline)
	row("fine-tuned", r.Finetune, s.Finetune)
	p("| **gain** | **%+.1f points** | **%+.1f points** | %+.1f points | | |\n\n", 100*r.Gain, 100*s.Gain,
		100*(s.Finetune.Result.ValidationAccuracy-s.Baseline.Result.ValidationAccuracy))
	p("The pseudo-labels' accuracy is measured against the photos' withheld labels after the fact; nothing is chosen by it.\n\n")
}
