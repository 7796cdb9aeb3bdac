package main

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/bucket"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/shard"
)

// packOptions are the flags of `whorl data pack`.
type packOptions struct {
	src, out string
	embedded bool
	wait     time.Duration
	cfg      shard.PackConfig
	asJSON   bool
}

func newDataPackCmd() *cobra.Command {
	o := packOptions{cfg: shard.DefaultPackConfig()}
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Pack an image folder into tar shards and an index, in a folder or object store",
		Long: `pack writes the class folder --src as tar shards in WebDataset's layout
(<key>.jpg and <key>.cls per photo; the photos' own bytes) plus index.json, which
places every photo (shard, offset, size, class, sha256) so that any one is read
with one range request. --out is a folder, file:///abs/folder, s3://bucket/prefix
(any S3-compatible store: endpoint, region and credentials as the AWS SDK takes
them, e.g. AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY; or ?endpoint=...&use_path_style=true) or gs://bucket/prefix.
A missing folder or S3 bucket is created.
The index is written last, so an interrupted pack is never read as a whole one.
Any --data accepts the result. --embedded packs the photos built into the binary
(what --data "" trains on) instead of a folder: the same photos under the same
paths, so the packed set splits and trains as the embedded one does.`,
		Example: `  whorl data pack --src ../shared/data/flowers --out /data/flowers-packed
  whorl data pack --embedded --out file:///tmp/embedded-packed
  AWS_ENDPOINT_URL_S3=http://127.0.0.1:8333 whorl data pack --src photos --out 's3://datasets/flowers?use_path_style=true'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openOut(cmd, o.out, o.wait)
			if err != nil {
				return err
			}
			defer st.Close()
			pack := func() (*shard.Index, *shard.PackReport, error) { return shard.Pack(cmd.Context(), o.src, st, o.cfg) }
			if o.embedded {
				pack = func() (*shard.Index, *shard.PackReport, error) { return shard.PackEmbedded(cmd.Context(), st, o.cfg) }
			}
			_, rep, err := pack()
			if err != nil {
				return err
			}
			if o.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			rep.Print(cmd.OutOrStdout(), st.URL())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.src, "src", "", "class folder to pack (one sub-folder per class)")
	f.BoolVar(&o.embedded, "embedded", false, "pack the embedded photo set (what --data \"\" trains on) instead of --src")
	f.StringVar(&o.out, "out", "", "where the shards and index go: a folder or a file://, s3:// or gs:// URL")
	cliflag.ByteSize(f, &o.cfg.ShardBytes, "shard-size", shard.DefaultShardBytes, shard.MinShardBytes, shard.MaxShardBytes, "size a shard grows to before the next starts")
	cliflag.DurationRange(f, &o.wait, "wait", 0, 0, 3*time.Minute, "keep trying an object store that does not answer yet for about this long (one started beside the packer, as in docker-compose.yaml); 0: the usual few seconds of retries")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagsOneRequired("src", "embedded")
	cmd.MarkFlagsMutuallyExclusive("src", "embedded")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// openOut opens where pack writes, creating a folder or bucket; wait
// stretches the store's retries (of what may pass: no answer, 5xx) over
// about that long, at most 2 s apart.
func openOut(cmd *cobra.Command, out string, wait time.Duration) (shard.Store, error) {
	if !shard.IsURL(out) {
		return shard.DirStore(out), nil
	}
	opts := bucket.DefaultOptions()
	opts.Create = true
	if wait > 0 {
		opts.MaxBackoff = 2 * time.Second
		opts.Attempts = min(100, opts.Attempts+int(wait/opts.MaxBackoff))
	}
	return bucket.Open(cmd.Context(), out, opts)
}

func newDataVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify URL",
		Short: "Read every shard of a packed data set and check it against its index",
		Long: `verify streams every shard of the packed data set at URL (a folder or a
file://, s3:// or gs:// URL) and checks each shard's size and digest and each
photo's place, digest and class against index.json. It names every damaged,
missing or unknown member by shard, offset and photo, and exits 1 if any.`,
		Example: `  whorl data verify /data/flowers-packed
  whorl data verify 's3://datasets/flowers?use_path_style=true'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := shard.OpenStore(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := shard.VerifyPack(cmd.Context(), st)
			if err != nil {
				return err
			}
			if asJSON {
				err = json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			} else {
				rep.Print(cmd.OutOrStdout(), args[0])
			}
			return errors.Join(err, rep.Err(args[0]))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
