package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/shard"
)

func init() { register(newDataCmd) }

// dataOptions are the flags of `whorl data inspect`.
type dataOptions struct {
	dir, manifest, apply  string
	asJSON, strict        bool
	seed, size, testPer   int
	maxPixels, workers    int
	testFrac, labeledFrac float64
}

// newDataCmd is the parent of the data commands.
func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Inspect, pack and verify image data sets",
		Example: `  whorl data inspect --data ../shared/data/flowers
  whorl data pack --src ../shared/data/flowers --out /data/flowers-packed
  whorl data verify /data/flowers-packed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDataInspectCmd(), newDataPackCmd(), newDataVerifyCmd())
	return cmd
}

func newDataInspectCmd() *cobra.Command {
	var o dataOptions
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Load a data set and print its classes, skipped files, split sizes and decode time",
		Long: `inspect reads an image folder (one sub-folder per class; .jpg, .jpeg and .png
files) or, without --data, the embedded CC BY flowers photos. It decodes every
image at --size px with all cores and prints the images per class, the files it
skipped and why, what it ignored, the sizes of the seeded stratified split, and
how long decoding took. --write-manifest saves the split as a JSON manifest;
--manifest uses a saved split instead of making one, and fails naming any listed
file that is missing or changed.`,
		Example: `  whorl data inspect
  whorl data inspect --data ../shared/data/flowers --json
  whorl data inspect --data photos --seed 2 --test-per-class 60 --labeled-fraction 0.1
  whorl data inspect --data photos --strict --write-manifest split.json
  whorl data inspect --data photos --manifest split.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return inspectData(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "data", "", `image folder with one sub-folder per class ("" = the embedded CC-BY photos)`)
	f.BoolVar(&o.asJSON, "json", false, "print one JSON object")
	f.BoolVar(&o.strict, "strict", false, "fail on the first bad image instead of skipping it")
	f.StringVar(&o.manifest, "write-manifest", "", "write the split manifest (JSON) to this file")
	f.StringVar(&o.apply, "manifest", "", "use the split of this manifest (fails if a listed file is missing or changed)")
	cliflag.IntRange(f, &o.seed, "seed", 1, 0, 1<<31-1, "seed of the split")
	cliflag.IntRange(f, &o.size, "size", 32, shard.MinSize, shard.MaxSize, "training image size in pixels")
	cliflag.IntRange(f, &o.maxPixels, "max-pixels", shard.DefaultMaxPixels, 1, 1<<30, "refuse images whose header declares more pixels")
	cliflag.IntRange(f, &o.workers, "decode-workers", 0, 0, shard.MaxWorkers, "decoding goroutines (0 = one per core)")
	cliflag.IntRange(f, &o.testPer, "test-per-class", 0, 0, 1<<20, "test images per class (0 = use --test-fraction)")
	cliflag.FloatRange(f, &o.testFrac, "test-fraction", 0.2, 0, 0.95, "share of each class held out for test")
	cliflag.FloatRange(f, &o.labeledFrac, "labeled-fraction", 0.1, 0.001, 1, "share of each class's training images that keep labels")
	return cmd
}

// inspectData loads, splits and reports (shard.Inspect).
func inspectData(cmd *cobra.Command, o dataOptions) error {
	in, err := shard.Inspect(cmd.Context(), shard.InspectConfig{
		Load: shard.LoadConfig{Dir: o.dir, Size: o.size, MaxPixels: o.maxPixels, Strict: o.strict, Workers: o.workers},
		Split: shard.SplitConfig{Seed: int64(o.seed), TestFraction: o.testFrac, TestPerClass: o.testPer,
			LabeledFraction: o.labeledFrac}, Manifest: o.apply, WriteManifest: o.manifest})
	if err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	in.Print(cmd.OutOrStdout())
	return nil
}
