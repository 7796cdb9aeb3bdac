package model

import "fmt"

// resnetDepths are the blocks per stage of torchvision's ResNets.
var resnetDepths = map[string][4]int{
	ArchResNet18: {2, 2, 2, 2},
	ArchResNet34: {3, 4, 6, 3},
	ArchResNet50: {3, 4, 6, 3},
}

// resnetSpecs follows torchvision's ResNet: the stem (conv1, bn1, relu, maxpool, or the small
// stem's 3x3 stride-1 conv1 and no pool), then four stages of 64, 128, 256 and 512 planes whose
// first block of stages 2-4 has stride 2 (on the 3x3 conv) and a 1x1 conv + BN shortcut
// wherever the shape changes.
func resnetSpecs(c Config) []layerSpec {
	stem := layerSpec{units: []unitSpec{{cin: 3, cout: 64, k: 7, stride: 2, pad: 3, conv: "conv1", bn: "bn1"}},
		pool: &pool2d{kind: poolMax, k: 3, stride: 2, pad: 1}}
	if c.stem() == StemSmall {
		stem = layerSpec{units: []unitSpec{same(3, 64, 3, "conv1", "bn1")}}
	}
	specs := []layerSpec{stem}
	bottleneck := c.Arch == ArchResNet50
	cin := 64
	for si, depth := range resnetDepths[c.Arch] {
		planes := 64 << si
		var stage layerSpec
		for bi := range depth {
			stride := 1
			if si > 0 && bi == 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d.%d.", si+1, bi)
			var r resSpec
			if bottleneck {
				r = bottleneckSpec(p, cin, planes, stride)
			} else {
				r = basicSpec(p, cin, planes, stride)
			}
			stage.res = append(stage.res, r)
			cin = r.units[len(r.units)-1].cout
		}
		specs = append(specs, stage)
	}
	return specs
}

// basicSpec is torchvision's BasicBlock: two 3x3 convs, the first with the stride.
func basicSpec(p string, cin, planes, stride int) resSpec {
	r := resSpec{units: []unitSpec{
		{cin: cin, cout: planes, k: 3, stride: stride, pad: 1, conv: p + "conv1", bn: p + "bn1"},
		same(planes, planes, 3, p+"conv2", p+"bn2"),
	}}
	r.down = downSpec(p, cin, planes, stride)
	return r
}

// bottleneckSpec is torchvision's Bottleneck (v1.5): 1x1 reduce, 3x3 with the stride, 1x1
// expand to 4x planes.
func bottleneckSpec(p string, cin, planes, stride int) resSpec {
	r := resSpec{units: []unitSpec{
		same(cin, planes, 1, p+"conv1", p+"bn1"),
		{cin: planes, cout: planes, k: 3, stride: stride, pad: 1, conv: p + "conv2", bn: p + "bn2"},
		same(planes, 4*planes, 1, p+"conv3", p+"bn3"),
	}}
	r.down = downSpec(p, cin, 4*planes, stride)
	return r
}

// downSpec is the 1x1 conv + BN shortcut when the block changes the shape, else nil.
func downSpec(p string, cin, cout, stride int) *unitSpec {
	if stride == 1 && cin == cout {
		return nil
	}
	return &unitSpec{cin: cin, cout: cout, k: 1, stride: stride, conv: p + "downsample.0", bn: p + "downsample.1"}
}
