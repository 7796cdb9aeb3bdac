package job

import (
	"github.com/whorl-ml/whorl/internal/validate"
)

// SelfTrainConfig is the self-training stage (issue 30), applied to both
// arms alike so the gain still isolates what rotation pretraining buys:
// each arm's trained classifier (the teacher) labels the unlabeled training
// photos; the most confident of them, balanced over the classes, join the
// labeled images; a student starting where its arm started (the baseline
// from scratch, the fine-tuning from the pretrained network with a new
// head) trains on both with the supervised recipe and its augmentation
// (Noisy Student, Xie et al., CVPR 2020, without dropout or stochastic
// depth; Lee, 2013, for the hard labels). The student of one round is the
// teacher of the next. The report gives both arms with and without it.
type SelfTrainConfig struct {
	// Rounds of teacher, pseudo-labels and student; 0 turns the stage off.
	Rounds int `json:"rounds,omitempty"`
	// Keep is the share of the unlabeled training photos pseudo-labeled in
	// each round, balanced: every class keeps at most Keep x unlabeled /
	// classes photos, those the teacher is most confident are of it.
	Keep float64 `json:"keep,omitempty"`
	// MinConfidence is the teacher's least probability (softmax averaged
	// over the photo and its mirror) for a photo to be kept.
	MinConfidence float64 `json:"min_confidence,omitempty"`
	// Epochs the student trains over the labeled and pseudo-labeled
	// photos (the supervised recipe's schedule stretched over them).
	Epochs int `json:"epochs,omitempty"`
	// Soft makes the student learn the teacher's probabilities for the
	// photos kept (distillation, as SimCLRv2 does from its fine-tuned
	// teacher) instead of their arg-max; the labeled images keep one-hot
	// targets.
	Soft bool `json:"soft,omitempty"`
}

// MaxSelfTrainRounds bounds self_train.rounds.
const MaxSelfTrainRounds = 5

// On reports whether the self-training stage runs.
func (s SelfTrainConfig) On() bool { return s.Rounds > 0 }

// Student is the supervised recipe a self-training student trains with:
// the job's supervised recipe over Epochs epochs.
func (s SelfTrainConfig) Student(sup SupervisedConfig) SupervisedConfig {
	sup.Epochs = s.Epochs
	return sup
}

// validateSelfTrain checks the stage's settings; all of them are left out when it
// is off.
func (c Config) validateSelfTrain(p *validate.Problems) {
	s := c.SelfTrain
	if !s.On() {
		if s != (SelfTrainConfig{}) {
			p.Addf("self_train.rounds", "= %d with other self_train settings given: set rounds to 1..%d or leave self_train out",
				s.Rounds, MaxSelfTrainRounds)
		}
		return
	}
	validate.InRange(p, "self_train.rounds", s.Rounds, 1, MaxSelfTrainRounds)
	if !(s.Keep > 0 && s.Keep <= 1) {
		p.Addf("self_train.keep", "= %g, must be in (0, 1] (the share of the unlabeled photos pseudo-labeled)", s.Keep)
	}
	if !(s.MinConfidence >= 0 && s.MinConfidence < 1) {
		p.Addf("self_train.min_confidence", "= %g, must be in [0, 1)", s.MinConfidence)
	}
	validate.InRange(p, "self_train.epochs", s.Epochs, 1, 10_000)
	if c.IsJoint() {
		p.Addf("self_train.rounds", "= %d in the joint mode: self-training follows the pretrain-finetune mode only", s.Rounds)
	}
	if s.Epochs >= 1 {
		c.Supervised.Schedule.validate(p, "supervised.schedule (over self_train.epochs)", s.Epochs)
	}
}
