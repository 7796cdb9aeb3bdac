package netns

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DelayProxy forwards TCP connections to a target and holds every chunk of
// bytes for its delay in each direction, in order: a link with latency,
// made in user space because this kernel has no netem. The delay may change
// while it serves.
type DelayProxy struct {
	target string
	delay  atomic.Int64
}

// NewDelayProxy returns a proxy to target with delay d.
func NewDelayProxy(target string, d time.Duration) *DelayProxy {
	p := &DelayProxy{target: target}
	p.SetDelay(d)
	return p
}

// SetDelay changes the delay of the bytes read from now on.
func (p *DelayProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Delay is the current delay.
func (p *DelayProxy) Delay() time.Duration { return time.Duration(p.delay.Load()) }

// Serve accepts on ln until ctx is done, then closes ln and every
// connection and returns after all its goroutines have stopped.
func (p *DelayProxy) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		<-ctx.Done()
		ln.Close()
	})
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("delay proxy: accept: %w", err)
		}
		wg.Go(func() { p.handle(ctx, c) })
	}
}

// handle connects c to the target and pumps both directions until both
// have ended, or either fails or ctx is done.
func (p *DelayProxy) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return
	}
	defer t.Close()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { // unblocks the readers when the connection is torn down
		<-ctx.Done()
		c.Close()
		t.Close()
	})
	var pumps sync.WaitGroup
	pumps.Go(func() { p.pump(ctx, cancel, t, c) })
	pumps.Go(func() { p.pump(ctx, cancel, c, t) })
	pumps.Wait()
	cancel()
	wg.Wait()
}

// chunk is bytes read at one time, due for writing at due.
type chunk struct {
	b   []byte
	due time.Time
}

// pump copies src to dst, each chunk the delay after it was read. At the end
// of src it half-closes dst; on a write error it cancels the connection.
func (p *DelayProxy) pump(ctx context.Context, cancel context.CancelFunc, dst, src net.Conn) {
	ch := make(chan chunk, 256)
	var reader sync.WaitGroup
	defer reader.Wait()
	reader.Go(func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case ch <- chunk{buf[:n], time.Now().Add(p.Delay())}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	for c := range ch {
		if wait := time.Until(c.due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			cancel()
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
