package shard

import (
	"errors"

	"github.com/whorl-ml/whorl/internal/validate"
)

// Errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrConfig marks an invalid LoadConfig, SplitConfig or Augment.
	ErrConfig = errors.New("invalid configuration")
	// ErrLayout marks a data folder that cannot be used: missing, not a
	// folder, fewer than two classes, or a class without images.
	ErrLayout = errors.New("unusable data folder")
	// ErrBadImage marks an image file that cannot be used (empty, truncated,
	// not an image, undecodable or too large); fatal only in strict mode.
	ErrBadImage = errors.New("bad image")
	// ErrSplit marks a split that cannot be made (a class too small).
	ErrSplit = errors.New("cannot split")
	// ErrManifest marks a manifest that is malformed or does not match the
	// dataset (a listed file missing or changed).
	ErrManifest = errors.New("manifest mismatch")
	// ErrPack marks a packed dataset that cannot be used: a malformed
	// index, a damaged or changed shard, an image whose bytes do not match
	// its digest.
	ErrPack = errors.New("damaged packed dataset")
	// ErrStore marks a packed dataset's store that cannot be reached or
	// read (after retries), or a URL no store is registered for.
	ErrStore = errors.New("store unavailable")
)

// Limits of LoadConfig.
const (
	// MinSize and MaxSize bound LoadConfig.Size.
	MinSize, MaxSize = 4, 1024
	// DefaultMaxPixels is the default header limit: 40 megapixels.
	DefaultMaxPixels = 40_000_000
	// MaxWorkers bounds LoadConfig.Workers.
	MaxWorkers = 1024
)

// LoadConfig says what Load reads and how.
type LoadConfig struct {
	// Dir is the data folder (one sub-folder per class); "" means the
	// embedded CC BY flowers set.
	Dir string
	// Size is the training size: images are resized so the shorter side is
	// Size, then centre-cropped to Size x Size. The embedded photos are 48
	// px, so a larger Size enlarges them.
	Size int
	// MaxPixels refuses images whose header declares more pixels than this,
	// before decoding them.
	MaxPixels int
	// Strict makes the first bad image a fatal error instead of a skip.
	Strict bool
	// Workers is the number of decoding goroutines; 0 means one per core.
	Workers int
}

// DefaultLoadConfig returns the embedded set at 32 px, 40 megapixel limit,
// lenient, all cores.
func DefaultLoadConfig() LoadConfig {
	return LoadConfig{Size: 32, MaxPixels: DefaultMaxPixels}
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c LoadConfig) Validate() error {
	p := validate.New(ErrConfig, "LoadConfig.")
	validate.InRange(p, "Size", c.Size, MinSize, MaxSize)
	if c.MaxPixels < 1 {
		p.Addf("MaxPixels", "= %d, must be at least 1", c.MaxPixels)
	}
	validate.InRange(p, "Workers", c.Workers, 0, MaxWorkers)
	return p.Err()
}
