package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard"
)

// FineTune fine-tunes the pretrained checkpoint (model.EncodeCheckpoint
// bytes of the 4-rotation network) on the labeled training images with the
// baseline's recipe and a new head, evaluates both models and returns the
// report JSON; with OutDir set it also writes the report files and the
// checkpoints there. pretext is the pretraining's per-epoch history for the
// report (nil: the history the checkpoint carries, if any).
func (r *Runner) FineTune(ctx context.Context, configJSON []byte, pretrained []byte, baselineJSON []byte, pretext []job.EpochStat) ([]byte, error) {
	t0 := time.Now()
	c, err := r.config(configJSON)
	if err != nil {
		return nil, err
	}
	var base baselineResult
	if err := json.Unmarshal(baselineJSON, &base); err != nil {
		return nil, fmt.Errorf("fine-tune: decode the baseline result: %w", err)
	}
	d, err := r.load(ctx, c)
	if err != nil {
		return nil, err
	}
	pre, meta, err := pretrainedNet(c, len(d.Set.Classes), pretrained)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if got, want := pre.Config().InputSize, c.Data.ImageSize; got != want {
		return nil, fmt.Errorf("fine-tune: pretrained network takes %d px inputs, the job %d px", got, want)
	}
	if got, want := pre.Config().Classes, c.PretrainOutputs(len(d.Set.Classes)); got != want {
		return nil, fmt.Errorf("fine-tune: the pretrained network has %d outputs, the job's mode %q needs %d", got, c.Mode, want)
	}
	rot := pre
	if c.IsJoint() {
		rot = recipe.RotationNet(pre)
	}
	pr := PretextResult{History: pretextHistory(meta, pretext)}
	if pr.TestRotationAccuracy, pr.PerClassRotation, err = RotationAccuracyPerClass(ctx, rot, d, d.Split.Test); err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if pr.Checkpoint, err = r.saveNet(FilePretrained, rot, d, rotationNames); err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	feat, err := recipe.FeatureNet(c, rot)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	frozen, err := frozenResults(ctx, c, d, feat, base.Frozen)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if !c.IsJoint() {
		pre = feat
	}
	n, hist, err := r.classifier(ctx, c, d, pre)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	ft, err := r.evaluate(ctx, n, d, hist)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if ft.Checkpoint, err = r.saveNet(FileFinetuned, n, d, d.Set.Classes); err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	ft.Seconds = time.Since(t0).Seconds()
	self, err := r.selfTrain(ctx, c, d, n, fineTuneStart(c, d, pre), c.Supervised, pb.Phase_PHASE_FINETUNING, FileFinetunedSelfCk)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	rep := r.report(c, d, base.Result, pr, ft)
	rep.Frozen = frozen
	if self != nil && base.SelfTrained != nil {
		rep.SelfTraining = &SelfTraining{Baseline: *base.SelfTrained, Finetune: *self,
			Gain: self.Result.TestAccuracy - base.SelfTrained.Result.TestAccuracy}
		rep.Timing.SelfTrainSeconds = base.SelfTrained.Result.Seconds + self.Result.Seconds
		if rep.Files != nil {
			rep.Files["baseline_selftrained"], rep.Files["finetuned_selftrained"] = FileBaselineSelfCk, FileFinetunedSelfCk
		}
	} else if self != nil {
		return nil, fmt.Errorf("fine-tune: %w: the baseline result carries no self-training; rerun the baseline", ErrSelfTrainMissing)
	}
	if r.OutDir != "" {
		if err := WriteReport(r.OutDir, rep); err != nil {
			return nil, fmt.Errorf("fine-tune: %w", err)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: encode report: %w", err)
	}
	return b, nil
}

// classifier is the network evaluated against the baseline, with its
// training history: in the pretrain-finetune mode the pretrained network
// with a new class head (and the last ReinitBlocks re-initialised),
// fine-tuned with the supervised recipe; in the joint mode the jointly
// trained network's own class head, fine-tuned for joint.finetune_epochs
// (none by default).
func (r *Runner) classifier(ctx context.Context, c job.Config, d *job.Data, pre *model.Net) (*model.Net, []job.EpochStat, error) {
	s, freeze := c.Supervised, c.Supervised.FreezeBlocks
	var n *model.Net
	if c.IsJoint() {
		n, s.Epochs, freeze = recipe.ClassNet(pre), c.Joint.FinetuneEpochs, 0
		if s.Epochs == 0 {
			return n, nil, nil
		}
	} else {
		var err error
		if n, freeze, err = fineTuneStart(c, d, pre)(); err != nil {
			return nil, nil, err
		}
	}
	hist, err := Supervised(ctx, n, d, s, freeze, c.Seed^supervisedStream, pb.Phase_PHASE_FINETUNING, r.Progress)
	return n, hist, err
}

// fineTuneStart is where the pretrain-finetune mode's classifiers start:
// the pretrained network with a new class head and its last
// supervised.reinit_blocks re-initialised, its first
// supervised.freeze_blocks kept fixed.
func fineTuneStart(c job.Config, d *job.Data, pre *model.Net) Student {
	return func() (*model.Net, int, error) {
		n := pre.Clone()
		n.ReplaceHead(len(d.Set.Classes), int64(c.Seed)+headInitOffset)
		if err := ReinitBlocks(n, c.Supervised.ReinitBlocks, int64(c.Seed)+reinitOffset); err != nil {
			return nil, 0, err
		}
		return n, c.Supervised.FreezeBlocks, nil
	}
}

// frozenResults evaluates the frozen features of the pretrained network
// and of a random one of its architecture, and lists them with the
// baseline's (evaluated by Baseline) in report order.
func frozenResults(ctx context.Context, c job.Config, d *job.Data, pre *model.Net, base *FrozenResult) ([]FrozenResult, error) {
	if !c.Eval.Any() {
		return nil, nil
	}
	pr, err := EvaluateFrozen(ctx, NetPretrained, pre, d, c.Eval)
	if err != nil {
		return nil, err
	}
	random, err := model.New(pre.Config(), int64(c.Seed)+randomInitOffset)
	if err != nil {
		return nil, fmt.Errorf("random network: %w", err)
	}
	if err := RecalibrateBN(ctx, random, d); err != nil {
		return nil, fmt.Errorf("random network: %w", err)
	}
	rr, err := EvaluateFrozen(ctx, NetRandom, random, d, c.Eval)
	if err != nil {
		return nil, err
	}
	out := []FrozenResult{pr}
	if base != nil {
		out = append(out, *base)
	}
	return append(out, rr), nil
}

// pretrainedNet decodes the pretrained checkpoint; no checkpoint (a job
// without pretraining epochs) gives the untrained network of the seed.
func pretrainedNet(c job.Config, classes int, pretrained []byte) (*model.Net, map[string]string, error) {
	if len(pretrained) == 0 {
		st, err := NewPretrainState(c, classes)
		if err != nil {
			return nil, nil, err
		}
		return st.Net, nil, nil
	}
	ck, err := model.DecodeCheckpoint(pretrained)
	if err != nil {
		return nil, nil, fmt.Errorf("pretrained checkpoint: %w", err)
	}
	return ck.Net, ck.Meta, nil
}

// pretextHistory is the given pretraining history or, if none, the one the
// checkpoint carries.
func pretextHistory(meta map[string]string, given []job.EpochStat) []job.EpochStat {
	if len(given) > 0 {
		return given
	}
	var h []job.EpochStat
	if s := meta[job.MetaHistory]; s != "" {
		_ = json.Unmarshal([]byte(s), &h) // optional: a bad history only loses the curve
	}
	return h
}

// report assembles the Report.
func (r *Runner) report(c job.Config, d *job.Data, base ModelResult, pretext PretextResult, ft ModelResult) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := c.Data.Dir
	if src == "" {
		src = "embedded"
	}
	rep := Report{
		Dataset: DatasetInfo{Source: src, Classes: d.Set.Classes, Train: len(d.Split.Train), Test: len(d.Split.Test),
			Labeled: len(d.Split.Labeled), Validation: len(d.Validation), Unlabeled: len(d.Split.Unlabeled),
			ImageSize: c.Data.ImageSize, ManifestDigest: d.ManifestDigest, Skipped: d.Skipped},
		Baseline: base, Pretext: pretext, Finetune: ft,
		Gain: ft.TestAccuracy - base.TestAccuracy, Seed: c.Seed, Preset: c.Preset, Model: c.Model.Label(),
		Cluster: r.Cluster, Config: c,
		Timing: Timing{TotalSeconds: time.Since(r.start).Seconds(), PretrainSeconds: pretrainSeconds(pretext.History, r.pretrain),
			BaselineSeconds: base.Seconds, FinetuneSeconds: ft.Seconds},
	}
	if s := rep.Timing.PretrainSeconds; s > 0 {
		samples := float64(c.Pretrain.Epochs * len(d.Split.Train) * shard.Rotations)
		rep.Timing.PretrainSamplesPerSecond = samples / s
	}
	if r.OutDir != "" {
		rep.Files = map[string]string{"report": FileReport, "summary": FileReportMD, "curves": FileCurves,
			"confusion": FileConfusion, "manifest": FileManifest, "config": FileConfig,
			"pretrained": FilePretrained, "finetuned": FileFinetuned, "baseline": FileBaselineCk}
		if c.Eval.Any() {
			rep.Files["probes"] = FileProbes
		}
	}
	return rep
}

// WriteReport writes report.json, report.md, curves.png, confusion.png and,
// when the report has frozen-feature evaluations, probes.png to dir.
func WriteReport(dir string, rep Report) error {
	if err := writeJSON(dir, FileReport, rep); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, FileReportMD), []byte(RenderMarkdown(rep))); err != nil {
		return err
	}
	curves, err := CurvesPNG(rep)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, FileCurves), curves); err != nil {
		return err
	}
	conf, err := ConfusionPNG(rep)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, FileConfusion), conf); err != nil {
		return err
	}
	if len(rep.Frozen) == 0 {
		return nil
	}
	probes, err := ProbesPNG(rep)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, FileProbes), probes)
}

// RunLocal runs all seven steps in this process, pretraining with the
// single-process loop (the reference for the distributed run). With OutDir
// set it checkpoints pretraining every CheckpointEvery steps and resumes
// from the last checkpoint (and a finished baseline) of the same
// configuration.
func (r *Runner) RunLocal(ctx context.Context, c job.Config) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	r.SetStart(time.Now())
	cj := c.JSON()
	if _, err := r.Prepare(ctx, cj); err != nil {
		return Report{}, err
	}
	d, err := r.load(ctx, c)
	if err != nil {
		return Report{}, err
	}
	t0 := time.Now()
	st, err := r.pretrainState(c, len(d.Set.Classes))
	if err != nil {
		return Report{}, err
	}
	var save func(*PretrainState) error
	if r.OutDir != "" {
		save = func(s *PretrainState) error { return SavePretrain(filepath.Join(r.OutDir, FileResume), c, s) }
	}
	if err := Pretrain(ctx, c, d, st, save, r.Progress); err != nil {
		return Report{}, err
	}
	r.SetPretrainTiming(time.Since(t0))
	pretrained, err := model.EncodeCheckpoint(st.Net, nil, nil)
	if err != nil {
		return Report{}, fmt.Errorf("encode the pretrained network: %w", err)
	}
	base, err := r.Baseline(ctx, cj)
	if err != nil {
		return Report{}, err
	}
	b, err := r.FineTune(ctx, cj, pretrained, base, st.History)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, fmt.Errorf("decode report: %w", err)
	}
	return rep, nil
}

// pretrainState resumes from OutDir's checkpoint or starts fresh.
func (r *Runner) pretrainState(c job.Config, classes int) (*PretrainState, error) {
	if r.OutDir != "" {
		st, err := ResumePretrain(filepath.Join(r.OutDir, FileResume), c, classes)
		if err != nil || st != nil {
			return st, err
		}
	}
	return NewPretrainState(c, classes)
}

// pretrainSeconds is the pretraining's time: its epochs' step times summed
// when every epoch measured them (so a run interrupted and resumed counts
// the steps it did before), else the leader's clock from the end of Prepare
// to the start of the baseline (clock).
func pretrainSeconds(history []job.EpochStat, clock time.Duration) float64 {
	var s float64
	for _, e := range history {
		if e.Seconds <= 0 {
			return clock.Seconds()
		}
		s += e.Seconds
	}
	if len(history) == 0 {
		return clock.Seconds()
	}
	return s
}
