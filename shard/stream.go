package shard

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Defaults of a Stream's cache and read-ahead for the roles that stream.
const (
	DefaultCacheBytes = 256 << 20
	DefaultReadAhead  = 2
)

// StreamConfig configures a Stream.
type StreamConfig struct {
	// Classes and Items are the images an id indexes. With Items nil, an id
	// is all there is: the item asked of Source has the id as its Path and
	// the class "images" (a worker fed by the coordinator).
	Classes []string
	Items   []Item
	// Source serves the images' file bytes.
	Source Source
	// Size is the side the images are decoded at, in pixels.
	Size int
	// CacheBytes bounds the decoded images kept. It never holds less than
	// a request, the requests read ahead and one more, whatever it says.
	CacheBytes int64
	// ReadAhead is how many of the requests given to Prefetch are read in
	// the background after each Images (0: none).
	ReadAhead int
	// Threads is the number of decoding goroutines (0: GOMAXPROCS).
	Threads int
}

// Stream serves images by id from a Source for data larger than memory:
// it fetches only the ids asked for (and, read ahead in the background,
// those of the next requests Prefetch named), decodes them in parallel and
// keeps them in a cache bounded in bytes, least recently used out first.
// Its methods are safe for concurrent use.
type Stream struct {
	cfg StreamConfig

	mu    sync.Mutex
	cache *pixCache
	next  [][]int // the requests after the current one, as Prefetch gave them
	busy  bool    // a read-ahead is running
	fetch int     // images fetched
}

// NewStream returns a Stream of cfg's images.
func NewStream(cfg StreamConfig) *Stream {
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.GOMAXPROCS(0)
	}
	if cfg.Items == nil {
		cfg.Classes = []string{"images"}
	}
	return &Stream{cfg: cfg, cache: newPixCache(cfg.CacheBytes)}
}

// Size is the side the Stream decodes images at.
func (s *Stream) Size() int { return s.cfg.Size }

// Len is the number of images (0 when an id is all there is).
func (s *Stream) Len() int { return len(s.cfg.Items) }

// item is image id's item.
func (s *Stream) item(id int) Item {
	if s.cfg.Items == nil {
		return Item{Path: strconv.Itoa(id)}
	}
	return s.cfg.Items[id]
}

// Prefetch records the requests that follow the current one: Images reads
// ahead the first ReadAhead of them.
func (s *Stream) Prefetch(next [][]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = next
}

// Images returns the images ids (fetched and decoded if not cached) as a
// Dataset of their own, ids[k] at index k, and the indices 0..len(ids)-1;
// then it starts reading ahead. An image the Source cannot give, or that
// does not decode, fails the request, named.
func (s *Stream) Images(ctx context.Context, ids []int) (*Dataset, []int, error) {
	for _, id := range ids {
		if id < 0 || (s.cfg.Items != nil && id >= len(s.cfg.Items)) {
			return nil, nil, fmt.Errorf("image id %d out of range 0..%d", id, len(s.cfg.Items)-1)
		}
	}
	// The cache holds at least the request, the requests read ahead and one
	// more, whatever its budget. A read-ahead (or another caller) running
	// beside this one can still push the request's images out between load
	// and assemble: load them again.
	s.mu.Lock()
	s.cache.budget = max(s.cache.budget, int64(len(ids)*(s.cfg.ReadAhead+2)*s.cfg.Size*s.cfg.Size*3))
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
// request (one evicted since load is errNotHeld).
func (s *Stream) assemble(ids []int) (*Dataset, []int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.cfg.Size * s.cfg.Size * 3
	pix := make([]uint8, 0, n*len(ids))
	items := make([]Item, len(ids))
	idx := make([]int, len(ids))
	for k, id := range ids {
		px, ok := s.cache.get(id)
		items[k], idx[k] = s.item(id), k
		if !ok {
			return nil, nil, fmt.Errorf("image %d (%s) is not held: %w", id, items[k].Path, errNotHeld)
		}
		pix = append(pix, px...)
	}
	d, err := NewDataset(s.cfg.Classes, items, s.cfg.Size, pix)
	return d, idx, err
}

// errNotHeld marks an image the cache no longer held when it was asked for.
var errNotHeld = errors.New("image not held")

// readAhead loads the next requests' images in the background, one run at
// a time; it stops with ctx and its errors are left for the request that
// needs the images to meet again.
func (s *Stream) readAhead(ctx context.Context) {
	s.mu.Lock()
	if s.busy || s.cfg.ReadAhead == 0 || len(s.next) == 0 {
		s.mu.Unlock()
		return
	}
	var ids []int
	for _, req := range s.next[:min(s.cfg.ReadAhead, len(s.next))] {
		ids = append(ids, req...)
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

// load fetches and decodes the ids not cached, with Threads goroutines of
// fetchChunk images each.
func (s *Stream) load(ctx context.Context, ids []int) error {
	s.mu.Lock()
	var missing []int
	seen := map[int]bool{}
	for _, id := range ids {
		if !s.cache.has(id) && !seen[id] {
			missing = append(missing, id)
			seen[id] = true
		}
	}
	s.fetch += len(missing)
	s.mu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Threads)
	for a := 0; a < len(missing); a += fetchChunk {
		chunk := missing[a:min(a+fetchChunk, len(missing))]
		g.Go(func() error { return s.loadChunk(ctx, chunk) })
	}
	return g.Wait()
}

// loadChunk fetches and decodes a few images into the cache.
func (s *Stream) loadChunk(ctx context.Context, ids []int) error {
	items := make([]Item, len(ids))
	for k, id := range ids {
		items[k] = s.item(id)
	}
	blobs, err := s.cfg.Source.Fetch(ctx, items)
	if err != nil {
		return fmt.Errorf("fetch images %s...: %w", items[0].Path, err)
	}
	for k, b := range blobs {
		if b.Err != nil {
			return fmt.Errorf("image %d (%s): %w", ids[k], items[k].Path, b.Err)
		}
		px, err := Decode(b.Data, s.cfg.Size, DefaultMaxPixels)
		if err != nil {
			return fmt.Errorf("image %d (%s): %w", ids[k], items[k].Path, err)
		}
		s.mu.Lock()
		s.cache.put(ids[k], px)
		s.mu.Unlock()
	}
	return nil
}

// Fetched is how many images have been fetched so far.
func (s *Stream) Fetched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch
}

// Reading reports whether a read-ahead is running.
func (s *Stream) Reading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

// CachedBytes is the size of the decoded images held.
func (s *Stream) CachedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.bytes
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
