package model

import "fmt"

// unit is one ConvBNReLU of the reference: conv(bias=False) -> BatchNorm2d -> ReLU.
type unit struct {
	conv *conv2d
	bn   *bnReLU
	in   shape     // input geometry of the last forward
	x    []float32 // input of the last forward (the previous layer's output)
	y, z []float32 // conv output and BN+ReLU output (workspace)
}

// block is a list of units with an optional pooling layer at its end.
type block struct {
	units []*unit
	pool  *pool2d
	pin   shape     // pooling input geometry of the last forward
	out   []float32 // pooled output (workspace)
}

// unitSpec describes one ConvBNReLU: input and output channels and kernel size.
type unitSpec struct{ cin, cout, k int }

// blockSpec describes one block.
type blockSpec struct {
	units []unitSpec
	pool  *pool2d
}

// buildSpecs expands a validated Config into the block list of rotnet.py.
func buildSpecs(c Config) []blockSpec {
	if c.isNIN() {
		return ninSpecs(c)
	}
	return smallSpecs(c)
}

// ninSpecs follows rotnet.py's nin(): the paper's CIFAR RotNet NIN.
func ninSpecs(c Config) []blockSpec {
	w := c.Width
	specs := []blockSpec{
		{units: []unitSpec{{3, w, 5}, {w, 160, 1}, {160, 96, 1}}, pool: &pool2d{kind: poolMax, k: 3, stride: 2, pad: 1}},
		{units: []unitSpec{{96, w, 5}, {w, w, 1}, {w, w, 1}}, pool: &pool2d{kind: poolAvg, k: 3, stride: 2, pad: 1}},
	}
	for range c.Blocks - 2 {
		specs = append(specs, blockSpec{units: []unitSpec{{w, w, 3}, {w, w, 1}, {w, w, 1}}})
	}
	return specs
}

// smallSpecs follows rotnet.py's small(): blocks of two 3x3 convs, max-pool 2 after all but the
// last. With 3 blocks and width 128 the widths are 32, 64, 128; more blocks keep the width.
func smallSpecs(c Config) []blockSpec {
	var specs []blockSpec
	cin := 3
	for i := range c.Blocks {
		cout := c.Width >> max(0, min(c.Blocks, 3)-1-i)
		b := blockSpec{units: []unitSpec{{cin, cout, 3}, {cout, cout, 3}}}
		if i < c.Blocks-1 {
			b.pool = &pool2d{kind: poolMax, k: 2, stride: 2}
		}
		specs = append(specs, b)
		cin = cout
	}
	return specs
}

// tensorSpec names one state_dict entry and where it lives.
type tensorSpec struct {
	Name  string
	Shape []int
	Off   int  // offset into Params() or State()
	Size  int  // element count
	State bool // in State() rather than Params()
	Count bool // num_batches_tracked (an int64 scalar in PyTorch)
}

// layoutSpecs lists the state_dict entries of the blocks and the head, in PyTorch's order, with
// their offsets into the parameter and state buffers, and the two buffer lengths.
func layoutSpecs(specs []blockSpec, width, classes int) (ts []tensorSpec, nParams, nState int) {
	add := func(name string, shp []int, state, count bool) {
		size := 1
		for _, d := range shp {
			size *= d
		}
		if count {
			size = 1
		}
		t := tensorSpec{Name: name, Shape: shp, Size: size, State: state, Count: count}
		if state {
			t.Off, nState = nState, nState+size
		} else {
			t.Off, nParams = nParams, nParams+size
		}
		ts = append(ts, t)
	}
	for bi, b := range specs {
		for li, u := range b.units {
			p := fmt.Sprintf("features.%d.layers.%d.", bi, li)
			add(p+"conv.weight", []int{u.cout, u.cin, u.k, u.k}, false, false)
			add(p+"bn.weight", []int{u.cout}, false, false)
			add(p+"bn.bias", []int{u.cout}, false, false)
			add(p+"bn.running_mean", []int{u.cout}, true, false)
			add(p+"bn.running_var", []int{u.cout}, true, false)
			add(p+"bn.num_batches_tracked", []int{}, true, true)
		}
	}
	add("classifier.weight", []int{classes, width}, false, false)
	add("classifier.bias", []int{classes}, false, false)
	return ts, nParams, nState
}
