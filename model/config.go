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
)

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
	// Arch is "nin4", "nin3" (Network-in-Network) or "small" (VGG-style).
	Arch string `json:"arch"`
	// Blocks is the number of conv blocks (nin: >= 2; small: >= 1).
	Blocks int `json:"blocks"`
	// Width is the channel width of the wide layers (nin: 192; small: the last block, 128).
	Width int `json:"width"`
	// InputSize is the side of the square RGB input in pixels.
	InputSize int `json:"input_size"`
	// Classes is the number of outputs of the linear head (4 rotations, 5 flowers, ...).
	Classes int `json:"classes"`
}

// DefaultConfig returns the reference configuration of arch: nin4 has 4 blocks of width 192,
// nin3 3 blocks, small 3 blocks with widths 32/64/128; all take 32x32 inputs and have 4 classes.
// An unknown arch yields a Config that fails Validate.
func DefaultConfig(arch string) Config {
	switch arch {
	case ArchNIN4:
		return Config{Arch: arch, Blocks: 4, Width: 192, InputSize: 32, Classes: 4}
	case ArchNIN3:
		return Config{Arch: arch, Blocks: 3, Width: 192, InputSize: 32, Classes: 4}
	case ArchSmall:
		return Config{Arch: arch, Blocks: 3, Width: 128, InputSize: 32, Classes: 4}
	}
	return Config{Arch: arch}
}

// isNIN reports whether the config is of the Network-in-Network family.
func (c Config) isNIN() bool { return c.Arch == ArchNIN4 || c.Arch == ArchNIN3 }

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	minBlocks := MinBlocksSmall
	if c.isNIN() {
		minBlocks = MinBlocksNIN
	}
	validate.OneOf(p, "Arch", c.Arch, ArchNIN4, ArchNIN3, ArchSmall)
	if c.Blocks < minBlocks || c.Blocks > MaxBlocks {
		p.Addf("Blocks", "= %d, must be in %d..%d for %s", c.Blocks, minBlocks, MaxBlocks, c.Arch)
	}
	validate.InRange(p, "Width", c.Width, MinWidth, MaxWidth)
	if d := 1 << min(max(c.Blocks-1, 0), 2); c.Arch == ArchSmall && c.Width%d != 0 {
		p.Addf("Width", "= %d, must be divisible by %d for small with %d blocks", c.Width, d, c.Blocks)
	}
	if minIn := c.minInputSize(); c.InputSize < minIn || c.InputSize > MaxInputSize {
		p.Addf("InputSize", "= %d, must be in %d..%d for %s with %d blocks", c.InputSize, minIn, MaxInputSize, c.Arch, c.Blocks)
	}
	validate.InRange(p, "Classes", c.Classes, 1, MaxClasses)
	return p.Err()
}

// minInputSize is the smallest input whose last feature map is at least 1x1.
func (c Config) minInputSize() int {
	if c.isNIN() {
		return 4
	}
	return 1 << min(c.Blocks-1, 8)
}
