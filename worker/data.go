package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// ImageFetcher reads the original file bytes of images by id from the
// coordinator (FetchImages), for workers without the dataset.
type ImageFetcher interface {
	FetchImages(ctx context.Context, ids []int) (map[int][]byte, error)
}

// netFactory builds netReplicas, loading the job's dataset once per
// configuration (local mode) or fetching images on demand.
type netFactory struct {
	mode    string // DataLocal or DataCoordinator
	dir     string // local folder overriding the job's ("": the job's)
	fetch   ImageFetcher
	threads int
	// cacheBytes and ahead size a streamed packed dataset's cache and
	// read-ahead (0 cache: never stream).
	cacheBytes int64
	ahead      int
	log        *slog.Logger

	mu      sync.Mutex
	data    map[string]*job.Data     // by config digest
	streams map[string]*shard.Stream // by config digest
	cache   *shard.Stream            // the coordinator-fed source (DataCoordinator)
}

// NewReplica builds the replica of the assignment's job.
func (f *netFactory) NewReplica(ctx context.Context, a Assignment) (Replica, error) {
	cfg, err := job.Parse(a.ConfigJSON)
	if err != nil {
		return nil, err
	}
	if f.threads > 0 {
		model.SetThreads(f.threads)
	}

	src, err := f.source(ctx, cfg, a.ManifestDigest)
	if err != nil {
		return nil, err
	}
	return newNetReplica(cfg, a, src)
}

// source returns where the job's images come from.
func (f *netFactory) source(ctx context.Context, cfg job.Config, manifest string) (imageSource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mode == DataCoordinator {
		if f.cache == nil || f.cache.Size() != cfg.Data.Stored() {
			f.cache = shard.NewStream(shard.StreamConfig{Source: coordSource{fetch: f.fetch}, Size: cfg.Data.Stored(),
				CacheBytes: f.coordCache(), ReadAhead: f.ahead, Threads: f.threads})
		}
		return f.cache, nil
	}
	if f.dir != "" {
		cfg.Data.Dir = f.dir
	}
	key := job.Digest(cfg)
	if src := f.stream(ctx, cfg, key, manifest); src != nil {
		return src, nil
	}
	d := f.data[key]
	if d == nil {
		var err error
		if d, err = job.LoadData(ctx, cfg); err != nil {
			return nil, fmt.Errorf("load local dataset %q: %w", cfg.Data.Dir, err)
		}
		if f.data == nil {
			f.data = map[string]*job.Data{}
		}
		f.data[key] = d
	}
	if manifest != "" && d.ManifestDigest != manifest {
		return nil, fmt.Errorf("%w: local dataset %q has manifest %.12s, the job's is %.12s (use the same data, or --data-source coordinator)",
			ErrManifest, cfg.Data.Dir, d.ManifestDigest, manifest)
	}
	return localSource{set: d.Set}, nil
}

// localSource serves images of a dataset loaded in full.
type localSource struct{ set *shard.Dataset }

// Images serves the ids from the whole set.
func (s localSource) Images(_ context.Context, ids []int) (*shard.Dataset, []int, error) {
	for _, id := range ids {
		if id < 0 || id >= s.set.Len() {
			return nil, nil, fmt.Errorf("image id %d out of range 0..%d", id, s.set.Len()-1)
		}
	}
	return s.set, ids, nil
}

// coordSource is a shard.Source over the coordinator's FetchImages, for
// workers without the dataset: an item's Path is its image id.
type coordSource struct{ fetch ImageFetcher }

// Fetch asks the coordinator for the items' bytes in one call.
func (c coordSource) Fetch(ctx context.Context, items []shard.Item) ([]shard.Blob, error) {
	ids := make([]int, len(items))
	for k, it := range items {
		id, err := strconv.Atoi(it.Path)
		if err != nil {
			return nil, fmt.Errorf("coordinator image %q: not an id", it.Path)
		}
		ids[k] = id
	}
	got, err := c.fetch.FetchImages(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("fetch %d images from the coordinator: %w", len(ids), err)
	}
	out := make([]shard.Blob, len(ids))
	for k, id := range ids {
		b, ok := got[id]
		if !ok {
			return nil, fmt.Errorf("fetch images: the coordinator did not send image %d", id)
		}
		out[k].Data = b
	}
	return out, nil
}

// coordCache is the coordinator-fed source's cache budget (a factory
// built without one keeps the default).
func (f *netFactory) coordCache() int64 {
	if f.cacheBytes == 0 {
		return DefaultImageCache
	}
	return f.cacheBytes
}

// stream returns a streaming source of the job's packed dataset, or nil
// when the data is not packed or its catalogue does not number the images
// as the coordinator does (its manifest, which lists any image left out,
// differs): the caller then loads the data whole.
func (f *netFactory) stream(ctx context.Context, cfg job.Config, key, manifest string) *shard.Stream {
	if f.cacheBytes == 0 || cfg.Data.Dir == "" { // the embedded set is not packed: do not unpack it twice
		return nil
	}
	if s := f.streams[key]; s != nil {
		return s
	}
	cat, err := job.OpenCatalogue(ctx, cfg)
	if errors.Is(err, job.ErrNotPacked) {
		return nil
	}
	if err != nil {
		f.logger().Warn("cannot stream the packed dataset; loading it whole", "data", cfg.Data.Dir, "err", err)
		return nil
	}
	if manifest != "" && cat.Data.ManifestDigest != manifest {
		cat.Origin.Close()
		f.logger().Warn("the packed dataset's catalogue numbers the images otherwise than the job (an image left out?); loading it whole",
			"data", cfg.Data.Dir, "catalogue", cat.Data.ManifestDigest[:12], "job", manifest[:min(12, len(manifest))])
		return nil
	}
	s := shard.NewStream(shard.StreamConfig{Classes: cat.Data.Set.Classes, Items: cat.Data.Set.Items, Source: cat.Data.Source,
		Size: cfg.Data.Stored(), CacheBytes: f.cacheBytes, ReadAhead: f.ahead, Threads: f.threads})
	if f.streams == nil {
		f.streams = map[string]*shard.Stream{}
	}
	f.streams[key] = s
	f.logger().Info("streaming the packed dataset", "data", cfg.Data.Dir, "images", s.Len(),
		"cache_bytes", f.cacheBytes, "read_ahead_steps", f.ahead)
	return s
}

func (f *netFactory) logger() *slog.Logger {
	if f.log == nil {
		return slog.Default()
	}
	return f.log
}
