package job

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/whorl-ml/whorl/shard"
)

// Data is a job's prepared data: the images, the split (with the
// validation part of the labeled set held out) and the normaliser, all
// deterministic from the Config. Read pixels with Images: LoadData holds
// them all in Set; OpenData holds none (Set is a catalogue) and reads them
// through Stream.
type Data struct {
	Set   *shard.Dataset
	Split shard.Split
	// LabeledTrain are the labeled images trained on; Validation are the
	// labeled images held out for tuning (disjoint, union = Split.Labeled).
	LabeledTrain, Validation []int
	Norm                     shard.Normalizer
	Manifest                 shard.Manifest
	// ManifestDigest is the hex SHA-256 of the manifest's JSON encoding.
	ManifestDigest string
	// Source serves the original file bytes of the images.
	Source shard.Source
	// Stream reads the images of data opened with OpenData (nil when
	// loaded whole).
	Stream *shard.Stream
	// Skipped are the unreadable image files left out, sorted by path.
	Skipped []shard.Skipped
	// Seed is the job seed the split was made with.
	Seed uint64
}

// LoadData loads and splits the data c describes: a class folder, a packed
// dataset (a folder or URL; see shard.OpenOrigin) or the embedded set. The
// Data's Source keeps serving the images' bytes, so a packed dataset's store
// stays open while the Data is used.
func LoadData(ctx context.Context, c Config) (*Data, error) {
	d, err := openData(ctx, c, func(lc shard.LoadConfig, o *shard.Origin) (*shard.Dataset, *shard.Report, error) {
		return shard.LoadOrigin(ctx, lc, o)
	})
	if err != nil {
		return nil, err
	}
	d.Norm = shard.ComputeNormalizer(d.Set, d.Split.Train)
	return d, nil
}

// openData opens the data c describes, decodes it with decode (the whole
// load, or a scan that keeps no pixels), checks what it skipped and splits
// what it kept. The Data's Source keeps the origin open.
func openData(ctx context.Context, c Config, decode func(shard.LoadConfig, *shard.Origin) (*shard.Dataset, *shard.Report, error)) (*Data, error) {
	lc := shard.DefaultLoadConfig()
	lc.Dir, lc.Size = c.Data.Dir, c.Data.Stored()
	if err := lc.Validate(); err != nil {
		return nil, fmt.Errorf("prepare data: %w", err)
	}
	o, err := shard.OpenOrigin(ctx, c.Data.Dir)
	if err != nil {
		return nil, fmt.Errorf("prepare data: open %s: %w", dataName(c.Data.Dir), err)
	}
	set, rep, err := decode(lc, o)
	if err == nil {
		err = checkSkipped(c.Data, set.Len(), rep.Skipped)
	}
	var d *Data
	if err == nil {
		d, err = splitData(c, set, rep.Skipped)
	}
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("prepare data: %w", err)
	}
	d.Source = o.Source
	return d, nil
}

// Catalogue is a packed dataset's images as the coordinator numbers them
// when none is left out, read from its index alone (nothing is decoded):
// the split and the manifest digest LoadData would give, the images' items
// by id and where their bytes are. A worker that streams a job's images
// checks ManifestDigest against the job's: equal digests mean equal ids.
type Catalogue struct {
	// Data has no pixels (Set.Size is 0) and no normaliser.
	Data *Data
	// Origin is the opened packed dataset; Close it when done.
	Origin *shard.Origin
}

// OpenCatalogue reads the index of the packed dataset c names. A class
// folder or the embedded set is not packed: ErrNotPacked.
func OpenCatalogue(ctx context.Context, c Config) (*Catalogue, error) {
	o, err := shard.OpenOrigin(ctx, c.Data.Dir)
	if err != nil {
		return nil, fmt.Errorf("catalogue of %s: %w", dataName(c.Data.Dir), err)
	}
	if o.Index == nil {
		o.Close()
		return nil, fmt.Errorf("catalogue of %s: %w", dataName(c.Data.Dir), ErrNotPacked)
	}
	set, err := shard.NewDataset(o.Classes, o.Items, 0, nil)
	var d *Data
	if err == nil {
		d, err = splitData(c, set, nil)
	}
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("catalogue of %s: %w", dataName(c.Data.Dir), err)
	}
	d.Source = o.Source
	return &Catalogue{Data: d, Origin: o}, nil
}

// splitData makes the split of set, the labeled images held out for
// validation, and the manifest (with the images left out) and its digest.
func splitData(c Config, set *shard.Dataset, skipped []shard.Skipped) (*Data, error) {
	split, err := shard.MakeSplit(set, shard.SplitConfig{Seed: int64(c.Seed), TestFraction: c.Split.TestFraction,
		TestPerClass: c.Split.TestPerClass, LabeledFraction: c.Split.LabeledFraction})
	if err != nil {
		return nil, err
	}
	d := &Data{Set: set, Split: split, Skipped: skipped, Seed: c.Seed}
	d.LabeledTrain, d.Validation = holdOut(set, split.Labeled, c.Seed, c.Split.ValidationFraction)
	d.Manifest = set.Manifest(split)
	d.Manifest.Skipped = skipped
	b, err := json.Marshal(d.Manifest)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	sum := sha256.Sum256(b)
	d.ManifestDigest = hex.EncodeToString(sum[:])
	return d, nil
}

// dataName names a data location in messages.
func dataName(dir string) string {
	if dir == "" {
		return "the embedded set"
	}
	return dir
}

// holdOut splits the labeled images per class: the first
// round(frac*n) of each class in a seeded hash order become validation,
// keeping at least one training image per class.
func holdOut(set *shard.Dataset, labeled []int, seed uint64, frac float64) (train, val []int) {
	byClass := map[int][]int{}
	for _, i := range labeled {
		c := set.Items[i].Class
		byClass[c] = append(byClass[c], i)
	}
	for _, members := range byClass {
		keys := make(map[int]string, len(members))
		for _, i := range members {
			h := sha256.New()
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], seed)
			h.Write(b[:])
			h.Write([]byte("validation\x00" + set.Items[i].SHA256 + "\x00" + set.Items[i].Path))
			keys[i] = string(h.Sum(nil))
		}
		sort.Slice(members, func(a, b int) bool { return keys[members[a]] < keys[members[b]] })
		nv := min(int(math.Round(frac*float64(len(members)))), len(members)-1)
		val = append(val, members[:nv]...)
		train = append(train, members[nv:]...)
	}
	sort.Ints(train)
	sort.Ints(val)
	return train, val
}

// LabeledFolds deals every labeled image (training and validation pooled)
// into k stratified folds for cross-validation inside the labeled set: the
// pool, sorted, is shuffled by a PCG generator seeded with the job seed,
// then each class's images go to folds 0, 1, ..., k-1 in turn. The test
// images are never in a fold.
func (d *Data) LabeledFolds(k int) [][]int {
	pool := append(append([]int(nil), d.LabeledTrain...), d.Validation...)
	slices.Sort(pool)
	rand.New(rand.NewPCG(d.Seed, foldStream)).Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	out := make([][]int, k)
	next := map[int]int{}
	for _, i := range pool {
		c := d.Set.Items[i].Class
		out[next[c]%k] = append(out[next[c]%k], i)
		next[c]++
	}
	return out
}

// foldStream is the PCG stream of LabeledFolds' shuffle ("folds").
const foldStream = 0x666f6c6473

// ReadImage returns the original file name and bytes of image id (for a
// coordinator that serves images to workers without the data).
func (d *Data) ReadImage(ctx context.Context, id int) (string, []byte, error) {
	if id < 0 || id >= d.Set.Len() {
		return "", nil, fmt.Errorf("read image %d: out of range 0..%d", id, d.Set.Len()-1)
	}
	it := d.Set.Items[id]
	blobs, err := d.Source.Fetch(ctx, []shard.Item{it})
	if err != nil {
		return "", nil, fmt.Errorf("read image %s: %w", it.Path, err)
	}
	if blobs[0].Err != nil {
		return "", nil, fmt.Errorf("read image %s: %w", it.Path, blobs[0].Err)
	}
	return it.Path, blobs[0].Data, nil
}

// checkSkipped refuses a folder whose unreadable image files are more than
// data.max_skipped_fraction of all its image files, naming the first few.
func checkSkipped(c DataConfig, loaded int, skipped []shard.Skipped) error {
	total := loaded + len(skipped)
	if len(skipped) == 0 || float64(len(skipped)) <= c.MaxSkipped()*float64(total) {
		return nil
	}
	return fmt.Errorf("%d of %d image files under %s could not be read (%.1f%%), more than data.max_skipped_fraction allows (%g): %s; "+
		"fix or remove them (whorl data inspect lists them all), or raise data.max_skipped_fraction (%w)",
		len(skipped), total, c.Dir, 100*float64(len(skipped))/float64(total), c.MaxSkipped(), SkippedSummary(skipped, 3), shard.ErrBadImage)
}

// SkippedSummary names the first n skipped files and why, and how many
// more there are.
func SkippedSummary(skipped []shard.Skipped, n int) string {
	var parts []string
	for _, s := range skipped[:min(n, len(skipped))] {
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Path, s.Reason))
	}
	out := strings.Join(parts, ", ")
	if more := len(skipped) - n; more > 0 {
		out += fmt.Sprintf(" and %d more", more)
	}
	return out
}
