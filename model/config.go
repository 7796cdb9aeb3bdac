package model

import (
	"errors"

	"github.com/whorl-ml/whorl/internal/validate"
)

// Architecture names accepted in Config.Arch.
const (
	ArchNIN4  = "nin4"
	ArchNIN3  = "nin3"
	ArchSmall = "small"
	// torchvision's ResNets (BasicBlock for 18 and 34, Bottleneck for 50).
	ArchResNet18 = "resnet18"
	ArchResNet34 = "resnet34"
	ArchResNet50 = "resnet50"
)

// Stems of a ResNet, accepted in Config.Stem.
const (
	// StemImageNet is torchvision's: 7x7 stride-2 conv1, BN, ReLU, 3x3 stride-2 max-pool.
	StemImageNet = "imagenet"
	// StemSmall is the usual choice below 64 px: 3x3 stride-1 conv1, BN, ReLU, no max-pool.
	StemSmall = "small"
)

// ResNetBlocks is the feature-block count of every ResNet: the stem and four stages.
const ResNetBlocks = 5

// Bounds checked by Config.Validate.
const (
	MinBlocksNIN   = 2
	MinBlocksSmall = 1
	MaxBlocks      = 16
	MinWidth       = 4
	MaxWidth       = 4096
	MaxInputSize   = 1024
	MaxClasses     = 100000
)

// Sentinel errors of the package.
var (
	// ErrConfig reports an invalid Config or optimizer configuration.
	ErrConfig = errors.New("invalid configuration")
	// ErrShape reports an input whose length or shape does not match what the call expects.
	ErrShape = errors.New("shape mismatch")
	// ErrCheckpoint reports a checkpoint file that is truncated, corrupt or for another network.
	ErrCheckpoint = errors.New("invalid checkpoint")
	// ErrNoForward reports a Backward call without a preceding training Forward.
	ErrNoForward = errors.New("backward without a matching forward")
)

// Config describes one network of the RotNet family.
type Config struct {
	// Arch is "nin4", "nin3" (Network-in-Network), "small" (VGG-style) or "resnet18",
	// "resnet34", "resnet50" (torchvision's).
	Arch string `json:"arch"`
	// Blocks is the number of feature blocks (nin: >= 2; small: >= 1; ResNet: 5, the stem and
	// the four stages).
	Blocks int `json:"blocks"`
	// Width is the channel width of the wide layers (nin: 192; small: the last block, 128;
	// ResNet: the last stage's output, 512 or 2048 for resnet50).
	Width int `json:"width"`
	// Stem is a ResNet's first layers: "imagenet" (torchvision's, the default when empty) or
	// "small". Other architectures leave it empty.
	Stem string `json:"stem,omitempty"`
	// ZeroInitResidual starts the last BatchNorm of every residual block at weight 0
	// (torchvision's zero_init_residual; off by default like torchvision's).
	ZeroInitResidual bool `json:"zero_init_residual,omitempty"`
	// InputSize is the side of the square RGB input in pixels.
	InputSize int `json:"input_size"`
	// Classes is the number of outputs of the linear head (4 rotations, 5 flowers, ...).
	Classes int `json:"classes"`
}

// Archs lists the architectures Config.Arch accepts.
func Archs() []string {
	return []string{ArchSmall, ArchNIN3, ArchNIN4, ArchResNet18, ArchResNet34, ArchResNet50}
}

// DefaultConfig returns the reference configuration of arch: nin4 has 4 blocks of width 192,
// nin3 3 blocks, small 3 blocks with widths 32/64/128, all taking 32x32 inputs; the ResNets
// have torchvision's ImageNet stem and take 224x224 inputs. All have 4 classes.
// An unknown arch yields a Config that fails Validate.
func DefaultConfig(arch string) Config {
	switch arch {
	case ArchNIN4:
		return Config{Arch: arch, Blocks: 4, Width: 192, InputSize: 32, Classes: 4}
	case ArchNIN3:
		return Config{Arch: arch, Blocks: 3, Width: 192, InputSize: 32, Classes: 4}
	case ArchSmall:
		return Config{Arch: arch, Blocks: 3, Width: 128, InputSize: 32, Classes: 4}
	case ArchResNet18, ArchResNet34:
		return Config{Arch: arch, Blocks: ResNetBlocks, Width: 512, InputSize: 224, Classes: 4, Stem: StemImageNet}
	case ArchResNet50:
		return Config{Arch: arch, Blocks: ResNetBlocks, Width: 2048, InputSize: 224, Classes: 4, Stem: StemImageNet}
	}
	return Config{Arch: arch}
}

// isNIN reports whether the config is of the Network-in-Network family.
func (c Config) isNIN() bool { return c.Arch == ArchNIN4 || c.Arch == ArchNIN3 }

// IsResNet reports whether the config is one of torchvision's ResNets.
func (c Config) IsResNet() bool {
	return c.Arch == ArchResNet18 || c.Arch == ArchResNet34 || c.Arch == ArchResNet50
}

// stem is the ResNet stem, the ImageNet one when empty.
func (c Config) stem() string {
	if c.Stem == "" {
		return StemImageNet
	}
	return c.Stem
}

// resnetWidth is the output width of a ResNet's last stage.
func (c Config) resnetWidth() int {
	if c.Arch == ArchResNet50 {
		return 2048
	}
	return 512
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	validate.OneOf(p, "Arch", c.Arch, Archs()...)
	if c.IsResNet() {
		c.validateResNet(p)
	} else {
		c.validateSequential(p)
	}
	if minIn := c.minInputSize(); c.InputSize < minIn || c.InputSize > MaxInputSize {
		p.Addf("InputSize", "= %d, must be in %d..%d for %s with %d blocks", c.InputSize, minIn, MaxInputSize, c.Arch, c.Blocks)
	}
	validate.InRange(p, "Classes", c.Classes, 1, MaxClasses)
	return p.Err()
}

// validateSequential checks the fields of the nin and small nets.
func (c Config) validateSequential(p *validate.Problems) {
	minBlocks := MinBlocksSmall
	if c.isNIN() {
		minBlocks = MinBlocksNIN
	}
	if c.Blocks < minBlocks || c.Blocks > MaxBlocks {
		p.Addf("Blocks", "= %d, must be in %d..%d for %s", c.Blocks, minBlocks, MaxBlocks, c.Arch)
	}
	validate.InRange(p, "Width", c.Width, MinWidth, MaxWidth)
	if d := 1 << min(max(c.Blocks-1, 0), 2); c.Arch == ArchSmall && c.Width%d != 0 {
		p.Addf("Width", "= %d, must be divisible by %d for small with %d blocks", c.Width, d, c.Blocks)
	}
	if c.Stem != "" || c.ZeroInitResidual {
		p.Addf("Stem", "= %q (zero_init_residual %v), must be empty and false for %s: only ResNets have a stem", c.Stem, c.ZeroInitResidual, c.Arch)
	}
}

// validateResNet checks the fields of a ResNet, whose shape is torchvision's.
func (c Config) validateResNet(p *validate.Problems) {
	if c.Blocks != ResNetBlocks {
		p.Addf("Blocks", "= %d, must be %d for %s (the stem and four stages)", c.Blocks, ResNetBlocks, c.Arch)
	}
	if w := c.resnetWidth(); c.Width != w {
		p.Addf("Width", "= %d, must be %d for %s (torchvision's)", c.Width, w, c.Arch)
	}
	validate.OneOf(p, "Stem", c.stem(), StemImageNet, StemSmall)
}

// minInputSize is the smallest input whose last feature map is at least 1x1.
func (c Config) minInputSize() int {
	if c.IsResNet() {
		if c.stem() == StemSmall {
			return 8
		}
		return 32
	}
	if c.isNIN() {
		return 4
	}
	return 1 << min(max(c.Blocks-1, 0), 8) // Blocks < 1 is Validate's to refuse, not a negative shift
}
