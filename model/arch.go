package model

import "fmt"

// unitSpec describes one conv(bias=False) -> BatchNorm2d pair: channels, kernel, stride,
// padding and the state_dict prefixes of the conv and the BN.
type unitSpec struct {
	cin, cout, k, stride, pad int
	conv, bn                  string
	block                     int // the feature block it belongs to (set by unitsOf)
}

// layerSpec describes one feature block: units with an optional pooling layer at the end (the
// small and NIN blocks, a ResNet stem), or a ResNet stage of residual blocks.
type layerSpec struct {
	units []unitSpec
	pool  *pool2d
	res   []resSpec
}

// resSpec describes one residual block: its main-path units (two for BasicBlock, three for
// Bottleneck) and the optional 1x1 downsampling shortcut.
type resSpec struct {
	units []unitSpec
	down  *unitSpec
}

// same is a stride-1 "same"-padded unit.
func same(cin, cout, k int, conv, bn string) unitSpec {
	return unitSpec{cin: cin, cout: cout, k: k, stride: 1, pad: (k - 1) / 2, conv: conv, bn: bn}
}

// buildSpecs expands a validated Config into its feature blocks.
func buildSpecs(c Config) []layerSpec {
	switch {
	case c.IsResNet():
		return resnetSpecs(c)
	case c.isNIN():
		return ninSpecs(c)
	}
	return smallSpecs(c)
}

// seqBlock names the units of block bi of rotnet.py's Net (features.B.layers.L.conv/bn).
func seqBlock(bi int, pool *pool2d, us ...[3]int) layerSpec {
	b := layerSpec{pool: pool}
	for li, u := range us {
		p := fmt.Sprintf("features.%d.layers.%d.", bi, li)
		b.units = append(b.units, same(u[0], u[1], u[2], p+"conv", p+"bn"))
	}
	return b
}

// ninSpecs follows rotnet.py's nin(): the paper's CIFAR RotNet NIN.
func ninSpecs(c Config) []layerSpec {
	w := c.Width
	specs := []layerSpec{
		seqBlock(0, &pool2d{kind: poolMax, k: 3, stride: 2, pad: 1}, [3]int{3, w, 5}, [3]int{w, 160, 1}, [3]int{160, 96, 1}),
		seqBlock(1, &pool2d{kind: poolAvg, k: 3, stride: 2, pad: 1}, [3]int{96, w, 5}, [3]int{w, w, 1}, [3]int{w, w, 1}),
	}
	for bi := 2; bi < c.Blocks; bi++ {
		specs = append(specs, seqBlock(bi, nil, [3]int{w, w, 3}, [3]int{w, w, 1}, [3]int{w, w, 1}))
	}
	return specs
}

// smallSpecs follows rotnet.py's small(): blocks of two 3x3 convs, max-pool 2 after all but the
// last. With 3 blocks and width 128 the widths are 32, 64, 128; more blocks keep the width.
func smallSpecs(c Config) []layerSpec {
	var specs []layerSpec
	cin := 3
	for i := range c.Blocks {
		cout := c.Width >> max(0, min(c.Blocks, 3)-1-i)
		var pool *pool2d
		if i < c.Blocks-1 {
			pool = &pool2d{kind: poolMax, k: 2, stride: 2}
		}
		specs = append(specs, seqBlock(i, pool, [3]int{cin, cout, 3}, [3]int{cout, cout, 3}))
		cin = cout
	}
	return specs
}

// unitsOf lists every unit of the blocks in state_dict order (a residual block's downsampling
// shortcut after its main path, as torchvision registers it).
func unitsOf(specs []layerSpec) []unitSpec {
	var us []unitSpec
	for bi, l := range specs {
		from := len(us)
		us = append(us, l.units...)
		for _, r := range l.res {
			us = append(us, r.units...)
			if r.down != nil {
				us = append(us, *r.down)
			}
		}
		for i := from; i < len(us); i++ {
			us[i].block = bi
		}
	}
	return us
}

// headName is the state_dict prefix of the classifier: torchvision's "fc" or rotnet.py's.
func headName(c Config) string {
	if c.IsResNet() {
		return "fc"
	}
	return "classifier"
}

// tensorSpec names one state_dict entry and where it lives.
type tensorSpec struct {
	Name  string
	Shape []int
	Off   int  // offset into Params() or State()
	Size  int  // element count
	State bool // in State() rather than Params()
	Count bool // num_batches_tracked (an int64 scalar in PyTorch)
	Block int  // feature block (0-based), -1 for the head
}

// layoutSpecs lists the state_dict entries of the units and the head, in PyTorch's order, with
// their offsets into the parameter and state buffers, and the two buffer lengths.
func layoutSpecs(units []unitSpec, head string, width, classes int) (ts []tensorSpec, nParams, nState int) {
	block := -1
	add := func(name string, shp []int, state, count bool) {
		size := 1
		for _, d := range shp {
			size *= d
		}
		if count {
			size = 1
		}
		t := tensorSpec{Name: name, Shape: shp, Size: size, State: state, Count: count, Block: block}
		if state {
			t.Off, nState = nState, nState+size
		} else {
			t.Off, nParams = nParams, nParams+size
		}
		ts = append(ts, t)
	}
	for _, u := range units {
		block = u.block
		add(u.conv+".weight", []int{u.cout, u.cin, u.k, u.k}, false, false)
		add(u.bn+".weight", []int{u.cout}, false, false)
		add(u.bn+".bias", []int{u.cout}, false, false)
		add(u.bn+".running_mean", []int{u.cout}, true, false)
		add(u.bn+".running_var", []int{u.cout}, true, false)
		add(u.bn+".num_batches_tracked", []int{}, true, true)
	}
	block = -1
	add(head+".weight", []int{classes, width}, false, false)
	add(head+".bias", []int{classes}, false, false)
	return ts, nParams, nState
}
