package worker

import (
	"container/list"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/whorl-ml/whorl/shard"
)

// streamChunk is how many images one decoding goroutine fetches at once
// (neighbours in a shard are one range request).
const streamChunk = 8

// streamSource serves images step by step from a shard.Source: a packed
// dataset's (ids are the catalogue's, job.OpenCatalogue, which equal the
// coordinator's when the manifests agree) or the coordinator's bytes
// (coordSource; items unknown, an id is all there is). It fetches only the
// ids a step needs (and, read ahead in the background, those of the next
// steps), decodes them in parallel and keeps them in a cache bounded in
// bytes, so that a worker's memory does not grow with the dataset.
type streamSource struct {
	classes []string
	items   []shard.Item
	src     shard.Source
	size    int
	threads int
	ahead   int // steps read ahead

	mu    sync.Mutex
	cache *pixCache
	next  [][]int // the steps after the current one, as Prefetch gave them
	busy  bool    // a read-ahead is running
	fetch int     // images fetched (for tests and metrics)
}

// newStreamSource streams the images of src at the job's store size: with
// items (and their classes), ids index items; without, an id is the
// item's Path.
func newStreamSource(classes []string, items []shard.Item, src shard.Source, size int, cacheBytes int64, ahead, threads int) *streamSource {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if items == nil {
		classes = []string{"images"}
	}
	return &streamSource{classes: classes, items: items, src: src, size: size, threads: threads, ahead: ahead,
		cache: newPixCache(cacheBytes)}
}

// item is image id's item.
func (s *streamSource) item(id int) shard.Item {
	if s.items == nil {
		return shard.Item{Path: strconv.Itoa(id)}
	}
	return s.items[id]
}

// Prefetch records the steps that follow the current one: images reads
// ahead the first s.ahead of them.
func (s *streamSource) Prefetch(next [][]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = next
}

// images returns the step's images (fetched and decoded if not cached),
// then starts reading ahead.
func (s *streamSource) images(ctx context.Context, ids []int) (*shard.Dataset, []int, error) {
	for _, id := range ids {
		if id < 0 || (s.items != nil && id >= len(s.items)) {
			return nil, nil, fmt.Errorf("image id %d out of range 0..%d", id, len(s.items)-1)
		}
	}
	// The cache holds at least the step, the steps read ahead and one more,
	// whatever its budget. A read-ahead running beside this step can still
	// push the step's images out between load and assemble: load them again.
	s.mu.Lock()
	s.cache.budget = max(s.cache.budget, int64(len(ids)*(s.ahead+2)*s.size*s.size*3))
	s.mu.Unlock()
	for try := 1; ; try++ {
		if err := s.load(ctx, ids); err != nil {
			return nil, nil, err
		}
		d, idx, err := s.assemble(ids)
		if err == nil {
			s.readAhead(ctx)
			return d, idx, nil
		}
		if try == 3 {
			return nil, nil, err
		}
	}
}

// assemble copies the ids' pixels out of the cache into a dataset of the
// step (one evicted since load is errNotHeld: a read-ahead pushed it out).
func (s *streamSource) assemble(ids []int) (*shard.Dataset, []int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return stepDataset(ids, s.size, s.classes, func(id int) (shard.Item, []uint8, bool) {
		px, ok := s.cache.get(id)
		return s.item(id), px, ok
	})
}

// readAhead loads the next steps' images in the background, one run at a
// time; it stops with ctx (the ring generation's) and its errors are left
// for the step that needs the images to meet again.
func (s *streamSource) readAhead(ctx context.Context) {
	s.mu.Lock()
	if s.busy || s.ahead == 0 || len(s.next) == 0 {
		s.mu.Unlock()
		return
	}
	var ids []int
	for _, step := range s.next[:min(s.ahead, len(s.next))] {
		ids = append(ids, step...)
	}
	s.busy = true
	s.mu.Unlock()
	go func() {
		_ = s.load(ctx, ids)
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
	}()
}

// load fetches and decodes the ids not cached, with s.threads goroutines
// of streamChunk images each.
func (s *streamSource) load(ctx context.Context, ids []int) error {
	s.mu.Lock()
	var missing []int
	for _, id := range ids {
		if !s.cache.has(id) {
			missing = append(missing, id)
		}
	}
	s.fetch += len(missing)
	s.mu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.threads)
	for a := 0; a < len(missing); a += streamChunk {
		chunk := missing[a:min(a+streamChunk, len(missing))]
		g.Go(func() error { return s.loadChunk(ctx, chunk) })
	}
	return g.Wait()
}

// loadChunk fetches and decodes a few images into the cache. An image the
// store cannot give, or that does not decode, fails the step, named.
func (s *streamSource) loadChunk(ctx context.Context, ids []int) error {
	items := make([]shard.Item, len(ids))
	for k, id := range ids {
		items[k] = s.item(id)
	}
	blobs, err := s.src.Fetch(ctx, items)
	if err != nil {
		return fmt.Errorf("fetch images %s...: %w", items[0].Path, err)
	}
	for k, b := range blobs {
		if b.Err != nil {
			return fmt.Errorf("image %d (%s): %w", ids[k], items[k].Path, b.Err)
		}
		px, err := shard.Decode(b.Data, s.size, shard.DefaultMaxPixels)
		if err != nil {
			return fmt.Errorf("image %d (%s): %w", ids[k], items[k].Path, err)
		}
		s.mu.Lock()
		s.cache.put(ids[k], px)
		s.mu.Unlock()
	}
	return nil
}

// pixCache holds decoded images by id up to a byte budget, evicting the
// least recently used.
type pixCache struct {
	budget, bytes int64
	order         *list.List // front: most recent; values are ids
	entries       map[int]*list.Element
	pix           map[int][]uint8
}

func newPixCache(budget int64) *pixCache {
	return &pixCache{budget: budget, order: list.New(), entries: map[int]*list.Element{}, pix: map[int][]uint8{}}
}

func (c *pixCache) has(id int) bool { _, ok := c.pix[id]; return ok }

// get returns id's pixels and marks them recently used.
func (c *pixCache) get(id int) ([]uint8, bool) {
	px, ok := c.pix[id]
	if ok {
		c.order.MoveToFront(c.entries[id])
	}
	return px, ok
}

// put adds id, evicting the least recently used until the budget holds.
func (c *pixCache) put(id int, px []uint8) {
	if c.has(id) {
		return
	}
	c.pix[id] = px
	c.entries[id] = c.order.PushFront(id)
	c.bytes += int64(len(px))
	for c.bytes > c.budget && c.order.Len() > 1 {
		e := c.order.Back()
		old := e.Value.(int)
		c.order.Remove(e)
		c.bytes -= int64(len(c.pix[old]))
		delete(c.pix, old)
		delete(c.entries, old)
	}
}

// fetched is how many images have been fetched so far.
func (s *streamSource) fetched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch
}

// reading reports whether a read-ahead is running.
func (s *streamSource) reading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

// cacheBytes is the size of the decoded images held.
func (s *streamSource) cacheBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.bytes
}
