package main

import (
	"encoding/json"
	"fmt"
	"io"

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
		Use:     "data",
		Short:   "Inspect image data sets",
		Example: `  whorl data inspect --data ../shared/data/flowers`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDataInspectCmd())
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

// inspectSummary is the --json output.
type inspectSummary struct {
	Source        string          `json:"source"`
	Classes       map[string]int  `json:"classes"`
	Images        int             `json:"images"`
	Skipped       []shard.Skipped `json:"skipped"`
	Ignored       shard.Ignored   `json:"ignored"`
	Split         splitSizes      `json:"split"`
	Seed          int             `json:"seed"`
	Size          int             `json:"size"`
	Bytes         int64           `json:"bytes"`
	DecodeSeconds float64         `json:"decode_seconds"`
	Workers       int             `json:"workers"`
}

// splitSizes counts the images of each part of a split.
type splitSizes struct {
	Train     int `json:"train"`
	Test      int `json:"test"`
	Labeled   int `json:"labeled"`
	Unlabeled int `json:"unlabeled"`
}

// inspectData loads, splits and reports.
func inspectData(cmd *cobra.Command, o dataOptions) error {
	lc := shard.LoadConfig{Dir: o.dir, Size: o.size, MaxPixels: o.maxPixels, Strict: o.strict, Workers: o.workers}
	d, rep, err := shard.Load(cmd.Context(), lc)
	if err != nil {
		return err
	}
	s, err := splitData(d, o)
	if err != nil {
		return fmt.Errorf("split %s: %w", rep.Source, err)
	}
	if o.manifest != "" {
		if err := shard.WriteManifest(o.manifest, d.Manifest(s)); err != nil {
			return err
		}
	}
	sum := inspectSummary{Source: rep.Source, Classes: rep.ClassCounts(), Images: d.Len(),
		Skipped: append([]shard.Skipped{}, rep.Skipped...), Ignored: rep.Ignored,
		Split: splitSizes{len(s.Train), len(s.Test), len(s.Labeled), len(s.Unlabeled)},
		Seed:  o.seed, Size: o.size, Bytes: rep.Bytes, DecodeSeconds: rep.Decode.Seconds(), Workers: rep.Workers}
	if o.asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printInspect(cmd.OutOrStdout(), sum, rep.Classes, o.manifest)
	return nil
}

// splitData makes the seeded split, or applies --manifest.
func splitData(d *shard.Dataset, o dataOptions) (shard.Split, error) {
	if o.apply != "" {
		m, err := shard.ReadManifest(o.apply)
		if err != nil {
			return shard.Split{}, err
		}
		return shard.ApplyManifest(d, m)
	}
	return shard.MakeSplit(d, shard.SplitConfig{Seed: int64(o.seed), TestFraction: o.testFrac,
		TestPerClass: o.testPer, LabeledFraction: o.labeledFrac})
}

// printInspect writes the human-readable report.
func printInspect(w io.Writer, s inspectSummary, classes []string, manifest string) {
	fmt.Fprintf(w, "data: %s: %d images in %d classes (%.1f MB read)\n", s.Source, s.Images, len(classes), float64(s.Bytes)/1e6)
	for _, c := range classes {
		fmt.Fprintf(w, "  %-20s %6d\n", c, s.Classes[c])
	}
	ig := s.Ignored
	fmt.Fprintf(w, "ignored: %d hidden, %d nested folders, %d non-image files, %d special files\n",
		ig.Hidden, ig.Folders, ig.NonImage, ig.Other)
	fmt.Fprintf(w, "skipped: %d\n", len(s.Skipped))
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "  %s: %s\n", k.Path, k.Reason)
	}
	fmt.Fprintf(w, "split (seed %d): train %d (labeled %d, unlabeled %d), test %d\n",
		s.Seed, s.Split.Train, s.Split.Labeled, s.Split.Unlabeled, s.Split.Test)
	rate := float64(s.Images+len(s.Skipped)) / max(s.DecodeSeconds, 1e-9)
	fmt.Fprintf(w, "decode: %.2f s with %d workers at %d px (%.0f images/s)\n", s.DecodeSeconds, s.Workers, s.Size, rate)
	if manifest != "" {
		fmt.Fprintf(w, "manifest: %s\n", manifest)
	}
}
