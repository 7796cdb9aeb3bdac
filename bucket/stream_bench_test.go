package bucket

import (
	"context"
	"testing"

	"github.com/whorl-ml/whorl/internal/s3test"
	"github.com/whorl-ml/whorl/shard"
	"github.com/whorl-ml/whorl/shard/shardtest"
)

// BenchmarkStreamLoader is the streaming loader's rate from a packed set
// by file:// URL and from a real S3 server (SeaweedFS on loopback), in one
// run: 3,000 embedded photos packed once into each, then fetched and
// decoded at 32 px by 2 threads from a cold cache in requests of 32, as a
// worker's steps ask for them. images/s is the figure to set against what
// training consumes (worker's BenchmarkPretrainStep).
func BenchmarkStreamLoader(b *testing.B) {
	ctx := context.Background()
	src := shardtest.EmbeddedFolder(b, 5, 600)
	srv := s3test.Start(b)
	cfg := shard.DefaultPackConfig()
	cfg.ShardBytes = 16 << 20
	opts := DefaultOptions()
	opts.Create = true
	for _, tc := range []struct{ name, url string }{
		{"file", "file://" + b.TempDir()},
		{"s3", srv.Bucket(b, "bench", "flowers")},
	} {
		dst, err := Open(ctx, tc.url, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := shard.Pack(ctx, src, dst, cfg); err != nil {
			b.Fatal(err)
		}
		dst.Close()
		o, err := shard.OpenOrigin(ctx, tc.url)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			images := 0
			for b.Loop() {
				s := shard.NewStream(shard.StreamConfig{Classes: o.Classes, Items: o.Items, Source: o.Source, Size: 32,
					CacheBytes: 4 << 20, Threads: 2})
				for a := 0; a+32 <= len(o.Items); a += 32 {
					ids := make([]int, 32)
					for k := range ids {
						ids[k] = a + k
					}
					if _, _, err := s.Images(ctx, ids); err != nil {
						b.Fatal(err)
					}
					images += 32
				}
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
		})
		o.Close()
	}
}
