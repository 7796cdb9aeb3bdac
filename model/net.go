package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Reducer sums a buffer element-wise across all data-parallel replicas, in place (the ring
// implements it). Every replica must call it the same number of times with equal lengths.
type Reducer interface {
	AllReduceSum(ctx context.Context, buf []float32) error
}

// Net is one RotNet network: its blocks, classifier head, the contiguous parameter, gradient and
// state buffers, and the workspace of the last batch size. A Net is not safe for concurrent use.
type Net struct {
	cfg    Config
	body   []layer // the feature blocks
	units  []*unit // every conv+BN unit of body, in state_dict order
	head   *head
	specs  []tensorSpec
	params []float32
	grads  []float32
	state  []float32
	train  bool
	red    Reducer
	obs    GradObserver
	ws     *workspace
	headLo int // start of the head's weight and bias in grads
}

// GradObserver is told, during Backward, as soon as a range of Grads() holds its final value
// for that Backward: first the head's, then each conv+BN unit's (conv weight, BN weight and
// bias) as its backward ends, in reverse state_dict order within a block and with a residual
// block's shortcut before its main path. Every range is reported exactly once per Backward, in
// the same order on every replica, so a data-parallel trainer can start summing a bucket of
// gradients while backward computes the next (PyTorch DDP's buckets). GradsReady must not
// modify the gradients until Backward returned, and it runs on Backward's goroutine.
type GradObserver interface {
	GradsReady(lo, hi int)
}

// New builds the network cfg describes, initialised from a PCG generator seeded with seed:
// for the small and NIN nets PyTorch's default initialisation (Kaiming-uniform conv and linear
// weights with bound 1/sqrt(fan_in)); for ResNets torchvision's (Kaiming-normal conv weights
// with std sqrt(2/fan_out), the default Linear head, and with ZeroInitResidual the last BN
// weight of each residual block 0). BatchNorm weights start at 1, biases at 0, running
// variances at 1. The net starts in training mode.
func New(cfg Config, seed int64) (*Net, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new network: %w", err)
	}
	n := build(cfg)
	n.init(seed)
	return n, nil
}

// build allocates the layers and buffers of a validated cfg, all zero.
func build(cfg Config) *Net {
	specs := buildSpecs(cfg)
	n := &Net{cfg: cfg, train: true}
	for _, s := range specs {
		l := newLayer(s)
		n.body = append(n.body, l)
		n.units = append(n.units, l.unitList()...)
	}
	n.head = &head{cin: cfg.Width, classes: cfg.Classes}
	var np, ns int
	n.specs, np, ns = layoutSpecs(unitsOf(specs), headName(cfg), cfg.Width, cfg.Classes)
	n.params, n.grads, n.state = make([]float32, np), make([]float32, np), make([]float32, ns)
	n.bind()
	return n
}

// bind points every layer's parameter, gradient and state views into the buffers.
func (n *Net) bind() {
	i := 0
	next := func() (p, g []float32) {
		t := n.specs[i]
		i++
		if t.State {
			return n.state[t.Off : t.Off+t.Size], nil
		}
		return n.params[t.Off : t.Off+t.Size], n.grads[t.Off : t.Off+t.Size]
	}
	for _, u := range n.units {
		u.glo = n.specs[i].Off
		u.conv.w, u.conv.dw = next()
		u.bn.gamma, u.bn.dgamma = next()
		u.bn.beta, u.bn.dbeta = next()
		u.ghi = n.specs[i-1].Off + n.specs[i-1].Size
		u.bn.rmean, _ = next()
		u.bn.rvar, _ = next()
		u.bn.nbt, _ = next()
	}
	n.headLo = n.specs[i].Off
	n.head.w, n.head.dw = next()
	n.head.b, n.head.db = next()
}

// init draws the initial parameters and resets the state.
func (n *Net) init(seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x726f746e6574))
	for _, u := range n.units {
		if n.cfg.IsResNet() {
			normal(rng, u.conv.w, math.Sqrt(2/float64(u.conv.cout*u.conv.k*u.conv.k)))
		} else {
			uniform(rng, u.conv.w, 1/math.Sqrt(float64(u.conv.kdim())))
		}
		fill(u.bn.gamma, 1)
		fill(u.bn.beta, 0)
		fill(u.bn.rmean, 0)
		fill(u.bn.rvar, 1)
		fill(u.bn.nbt, 0)
	}
	if n.cfg.ZeroInitResidual {
		n.zeroResidualBN()
	}
	n.initHead(rng)
}

// zeroResidualBN sets the weight of the last BatchNorm of every residual block to 0, so each
// block starts as its shortcut (torchvision's zero_init_residual).
func (n *Net) zeroResidualBN() {
	for _, l := range n.body {
		if s, ok := l.(*stage); ok {
			for _, b := range s.blocks {
				fill(b.units[len(b.units)-1].bn.gamma, 0)
			}
		}
	}
}

// initHead draws the classifier weights and bias like PyTorch's nn.Linear.
func (n *Net) initHead(rng *rand.Rand) {
	bound := 1 / math.Sqrt(float64(n.head.cin))
	uniform(rng, n.head.w, bound)
	uniform(rng, n.head.b, bound)
}

// uniform fills s with draws from U(-bound, bound).
func uniform(rng *rand.Rand, s []float32, bound float64) {
	for i := range s {
		s[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// normal fills s with draws from N(0, std^2).
func normal(rng *rand.Rand, s []float32, std float64) {
	for i := range s {
		s[i] = float32(rng.NormFloat64() * std)
	}
}

// fill sets every element of s to v.
func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// Config returns the network's configuration (Classes follows ReplaceHead).
func (n *Net) Config() Config { return n.cfg }

// Params returns every trainable parameter in one contiguous buffer, in rotnet.py's state_dict
// order (parameters only), each tensor in PyTorch's layout. Writes change the network.
func (n *Net) Params() []float32 { return n.params }

// Grads returns the gradient buffer, laid out as Params. Backward accumulates into it; the ring
// all-reduces it in place.
func (n *Net) Grads() []float32 { return n.grads }

// ZeroGrads sets every gradient to zero.
func (n *Net) ZeroGrads() { clear(n.grads) }

// State returns the BatchNorm running statistics: for each BN layer in order running_mean,
// running_var and num_batches_tracked (as a float), contiguous and apart from Params.
func (n *Net) State() []float32 { return n.state }

// SetTraining selects training mode (batch statistics, running-statistics updates) or
// evaluation mode (running statistics).
func (n *Net) SetTraining(train bool) { n.train = train }

// SetInputSize changes the side of the square input the network takes (Config.InputSize) for
// the calls that follow; a resolution curriculum trains the same parameters at several sizes,
// since every layer but the input is size-free (the head pools globally). A new size drops the
// workspace (the next Forward allocates one for it); the parameters, gradients, BatchNorm
// statistics and mode are kept. The size must be one Config.Validate accepts for the network.
func (n *Net) SetInputSize(size int) error {
	if size == n.cfg.InputSize {
		return nil
	}
	cfg := n.cfg
	cfg.InputSize = size
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("set input size: %w", err)
	}
	n.cfg, n.ws = cfg, nil
	return nil
}

// Training reports whether the net is in training mode.
func (n *Net) Training() bool { return n.train }

// SetReducer sets the replica reducer used by BatchNorm in training mode to synchronise its batch
// statistics (forward and backward), so N replicas on a split batch compute what one process
// computes on the whole batch. nil means a single process.
func (n *Net) SetReducer(r Reducer) { n.red = r }

// SetGradObserver sets the observer Backward tells of every gradient range it finished (nil:
// none).
func (n *Net) SetGradObserver(o GradObserver) { n.obs = o }

// NumBlocks is the number of feature blocks (Features' upto range, Config.Blocks).
func (n *Net) NumBlocks() int { return len(n.body) }

// NumParams is the length of Params() and Grads().
func (n *Net) NumParams() int { return len(n.params) }

// Clone returns a deep copy of the network (parameters, state, mode) without gradients,
// workspace or reducer.
func (n *Net) Clone() *Net {
	c := build(n.cfg)
	copy(c.params, n.params)
	copy(c.state, n.state)
	c.train = n.train
	return c
}

// ReplaceHead swaps the classifier for a fresh Linear(width, classes) initialised from seed,
// keeping every other parameter and the state (e.g. 4 rotations -> 5 flower classes). Gradients
// are reset to zero. It panics when classes is out of Config's range, as a programming error.
func (n *Net) ReplaceHead(classes int, seed int64) {
	cfg := n.cfg
	cfg.Classes = classes
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("model: replace head: %v", err))
	}
	c := build(cfg)
	body := len(n.params) - len(n.head.w) - len(n.head.b)
	copy(c.params[:body], n.params[:body])
	copy(c.state, n.state)
	c.initHead(rand.New(rand.NewPCG(uint64(seed), 0x68656164)))
	c.train, c.red = n.train, n.red
	*n = *c
}

// Truncate returns a new network of n's first blocks feature blocks, their parameters and
// BatchNorm statistics copied, with a fresh head for the same classes initialised from seed (n's
// head read its last block). It is how a pretext network with extra blocks hands its features
// to fine-tuning and the probes (RotNet's deeper pretext networks): the tensors keep their
// rotnet.py names. The blocks must exist and be laid out as in a network built with that many
// (a small net's widths depend on its block count below 3).
func (n *Net) Truncate(blocks int, seed int64) (*Net, error) {
	if blocks < 1 || blocks > len(n.body) {
		return nil, fmt.Errorf("%w: truncate to %d blocks: the network has %d", ErrConfig, blocks, len(n.body))
	}
	cfg := n.cfg
	cfg.Blocks = blocks
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("truncate to %d blocks: %w", blocks, err)
	}
	m := build(cfg)
	m.init(seed)
	src := make(map[string]tensorSpec, len(n.specs))
	for _, t := range n.specs {
		src[t.Name] = t
	}
	for _, t := range m.specs {
		if t.Block < 0 {
			continue // the head
		}
		from, ok := src[t.Name]
		if !ok || !slices.Equal(from.Shape, t.Shape) || from.State != t.State {
			return nil, fmt.Errorf("%w: truncate to %d blocks: %s is laid out differently in a %d-block network",
				ErrConfig, blocks, t.Name, len(n.body))
		}
		copy(m.bufferOf(t)[t.Off:t.Off+t.Size], n.bufferOf(from)[from.Off:from.Off+from.Size])
	}
	m.train = n.train
	return m, nil
}

// Specs returns the names, shapes and buffer offsets of the state_dict entries, in order.
func (n *Net) Specs() []TensorSpec {
	out := make([]TensorSpec, len(n.specs))
	for i, t := range n.specs {
		out[i] = TensorSpec{Name: t.Name, Shape: slices.Clone(t.Shape), Offset: t.Off, Size: t.Size, State: t.State, Block: t.Block}
	}
	return out
}

// TensorSpec describes one state_dict entry: its PyTorch name and shape, and where its elements
// live (Offset into Params(), or into State() when State is true).
type TensorSpec struct {
	Name   string
	Shape  []int
	Offset int
	Size   int
	State  bool
	// Block is the feature block (0-based, as Features counts them from 1) the entry belongs
	// to: a ResNet's stem is block 0 and layerK block K; the classifier head is -1.
	Block int
}
