package model

import (
	"fmt"
	"math"

	"github.com/whorl-ml/whorl/internal/validate"
)

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(params, grads []float32, lr float64)
	// State returns the optimizer's internal state (for checkpoints); SetState restores it.
	State() []float32
}

// SGDConfig configures SGD.
type SGDConfig struct {
	Momentum    float64 `json:"momentum"`
	Dampening   float64 `json:"dampening"`
	WeightDecay float64 `json:"weight_decay"`
	Nesterov    bool    `json:"nesterov"`
}

// DefaultSGDConfig is the paper's setting: momentum 0.9, Nesterov, weight decay 5e-4.
func DefaultSGDConfig() SGDConfig {
	return SGDConfig{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c SGDConfig) Validate() error {
	p := validate.New(ErrConfig, "SGD ")
	if !(c.Momentum >= 0 && c.Momentum < 1) {
		p.Addf("Momentum", "= %g, must be in [0, 1)", c.Momentum)
	}
	validate.InRange(p, "Dampening", c.Dampening, 0, 1)
	validate.InRange(p, "WeightDecay", c.WeightDecay, 0, 1)
	if c.Nesterov && (c.Momentum == 0 || c.Dampening != 0) {
		p.Addf("Nesterov", "needs Momentum > 0 and Dampening 0")
	}
	return p.Err()
}

// SGD is PyTorch's torch.optim.SGD: g = grad + wd*p; buf = g on the first step, else
// momentum*buf + (1-dampening)*g; g = g + momentum*buf (Nesterov) or buf; p -= lr*g.
type SGD struct {
	cfg   SGDConfig
	buf   []float32
	steps int
}

// NewSGD returns an SGD optimizer; it panics on an invalid config (call Validate first for
// configuration that comes from users).
func NewSGD(c SGDConfig) *SGD {
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("model: new SGD: %v", err))
	}
	return &SGD{cfg: c}
}

// Step applies one SGD update to params from grads with learning rate lr.
func (o *SGD) Step(params, grads []float32, lr float64) {
	if o.cfg.Momentum != 0 && len(o.buf) != len(params) {
		o.buf, o.steps = make([]float32, len(params)), 0
	}
	wd, mom, damp := float32(o.cfg.WeightDecay), float32(o.cfg.Momentum), float32(1-o.cfg.Dampening)
	lr32, first, nest := float32(lr), o.steps == 0, o.cfg.Nesterov
	parallelFor(len(params), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := grads[i]
			if wd != 0 {
				g += wd * params[i]
			}
			if mom != 0 {
				b := g
				if !first {
					b = mom*o.buf[i] + damp*g
				}
				o.buf[i] = b
				if nest {
					g += mom * b
				} else {
					g = b
				}
			}
			params[i] -= lr32 * g
		}
	})
	o.steps++
}

// State returns [steps, momentum buffer...].
func (o *SGD) State() []float32 { return append([]float32{float32(o.steps)}, o.buf...) }

// SetState restores a State() of an SGD over n parameters.
func (o *SGD) SetState(s []float32, n int) error {
	if len(s) == 0 || (len(s) != 1 && len(s) != n+1) {
		return fmt.Errorf("%w: SGD state has %d values, want 1 or %d", ErrCheckpoint, len(s), n+1)
	}
	o.steps = int(s[0])
	o.buf = append([]float32(nil), s[1:]...)
	return nil
}

// AdamConfig configures Adam.
type AdamConfig struct {
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
}

// DefaultAdamConfig is PyTorch's default: betas (0.9, 0.999), eps 1e-8, no weight decay.
func DefaultAdamConfig() AdamConfig { return AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c AdamConfig) Validate() error {
	p := validate.New(ErrConfig, "Adam ")
	if !(c.Beta1 >= 0 && c.Beta1 < 1) {
		p.Addf("Beta1", "= %g, must be in [0, 1)", c.Beta1)
	}
	if !(c.Beta2 >= 0 && c.Beta2 < 1) {
		p.Addf("Beta2", "= %g, must be in [0, 1)", c.Beta2)
	}
	if !(c.Eps > 0 && c.Eps <= 1) {
		p.Addf("Eps", "= %g, must be in (0, 1]", c.Eps)
	}
	validate.InRange(p, "WeightDecay", c.WeightDecay, 0, 1)
	return p.Err()
}

// Adam is PyTorch's torch.optim.Adam (L2 weight decay added to the gradient, no amsgrad).
type Adam struct {
	cfg   AdamConfig
	m, v  []float32
	steps int
}

// NewAdam returns an Adam optimizer; it panics on an invalid config.
func NewAdam(c AdamConfig) *Adam {
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("model: new Adam: %v", err))
	}
	return &Adam{cfg: c}
}

// Step applies one Adam update.
func (o *Adam) Step(params, grads []float32, lr float64) {
	if len(o.m) != len(params) {
		o.m, o.v, o.steps = make([]float32, len(params)), make([]float32, len(params)), 0
	}
	o.steps++
	c := o.cfg
	bc1 := 1 - math.Pow(c.Beta1, float64(o.steps))
	bc2 := math.Sqrt(1 - math.Pow(c.Beta2, float64(o.steps)))
	b1, b2, wd := float32(c.Beta1), float32(c.Beta2), float32(c.WeightDecay)
	step, inv2, eps := float32(lr/bc1), float32(1/bc2), float32(c.Eps)
	parallelFor(len(params), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := grads[i] + wd*params[i]
			o.m[i] = b1*o.m[i] + (1-b1)*g
			o.v[i] = b2*o.v[i] + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(o.v[i])))*inv2 + eps
			params[i] -= step * o.m[i] / denom
		}
	})
}

// State returns [steps, m..., v...].
func (o *Adam) State() []float32 {
	s := append([]float32{float32(o.steps)}, o.m...)
	return append(s, o.v...)
}

// SetState restores a State() of an Adam over n parameters.
func (o *Adam) SetState(s []float32, n int) error {
	if len(s) == 0 || (len(s) != 1 && len(s) != 2*n+1) {
		return fmt.Errorf("%w: Adam state has %d values, want 1 or %d", ErrCheckpoint, len(s), 2*n+1)
	}
	o.steps = int(s[0])
	o.m, o.v = nil, nil
	if len(s) > 1 {
		o.m = append([]float32(nil), s[1:n+1]...)
		o.v = append([]float32(nil), s[n+1:]...)
	}
	return nil
}
