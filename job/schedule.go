package job

import "math"

// Cosine is the cosine-annealed learning rate at step (0-based) of total, after a linear
// warm-up over the first warmup steps: base*(step+1)/warmup during warm-up, then
// base*(1+cos(pi*t))/2 with t going from 0 to 1 over the remaining steps.
func Cosine(base float64, step, total, warmup int) float64 {
	if step < warmup {
		return Warmup(base, step, warmup)
	}
	rest := total - warmup
	if rest <= 0 {
		return base
	}
	t := min(float64(step-warmup)/float64(rest), 1)
	return base * 0.5 * (1 + math.Cos(math.Pi*t))
}

// Warmup is the linear warm-up rate base*(step+1)/warmup for step < warmup, base afterwards.
func Warmup(base float64, step, warmup int) float64 {
	if warmup <= 0 || step >= warmup {
		return base
	}
	return base * float64(step+1) / float64(warmup)
}

// StepDecay is the paper's step schedule: base multiplied by gamma once for every milestone
// (epoch) already reached. The RotNet paper uses base 0.1, gamma 0.2, milestones 30, 60, 80.
func StepDecay(base float64, epoch int, milestones []int, gamma float64) float64 {
	lr := base
	for _, m := range milestones {
		if epoch >= m {
			lr *= gamma
		}
	}
	return lr
}

// Rate is the schedule's learning rate at a step (0-based) of an epoch, for
// a run of epochs epochs of stepsPerEpoch steps starting from base. The
// single-process loops and the distributed workers both use it, so their
// schedules agree.
func (s ScheduleConfig) Rate(base float64, epoch, step, stepsPerEpoch, epochs int) float64 {
	global, total, warm := epoch*stepsPerEpoch+step, epochs*stepsPerEpoch, s.WarmupEpochs*stepsPerEpoch
	switch s.Kind {
	case ScheduleCosine:
		return Cosine(base, global, total, warm)
	case ScheduleStep:
		return Warmup(StepDecay(base, epoch, s.Milestones, s.Gamma), global, warm)
	}
	return Warmup(base, global, warm)
}
