package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Causes of an attempt cancelled by the client itself (the caller's ctx
// still running): the attempt is abandoned and the call fails over.
var (
	errAttemptTimeout = errors.New("coordinator attempt timed out")
	errAddrDown       = errors.New("coordinator found unreachable by another call")
	errDial           = errors.New("dial coordinator")
)

// attempt is one try of a call at one coordinator. Its ctx ends when the
// caller's does, when its timer fires (see expect), or when another call
// finds the same address unreachable.
type attempt struct {
	ctx   context.Context
	conn  *grpc.ClientConn
	timer *time.Timer
}

// expect re-arms the attempt's timer: the attempt fails over unless it
// makes progress (or ends) within d. Streaming calls call it after each
// message sent or received.
func (a *attempt) expect(d time.Duration) { a.timer.Reset(d) }

// do calls fn on the leader until it succeeds, fails with an application
// error, or ctx (capped by RetryTimeout) ends. Each attempt is bounded by
// bound (re-armable with attempt.expect); an attempt that times out, or
// fails with UNAVAILABLE or a connection error, marks its address down and
// moves to the next one; a NOT_LEADER answer moves to the leader it names.
func (c *Client) do(ctx context.Context, op string, bound time.Duration, fn func(*attempt) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RetryTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	tried := map[string]bool{}
	addr := c.pick()
	for ; ; addr = c.Leader() { // after the first attempt, failover chose the address
		tried[addr] = true
		err := c.try(ctx, addr, bound, fn)
		if err == nil {
			c.up(addr)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s via %s: %w (gave up: %w)", op, addr, err, ctx.Err())
		}
		wait, ok := c.failover(addr, err, tried)
		if !ok {
			return fmt.Errorf("%s via %s: %w", op, addr, err)
		}
		c.log.Debug("coordinator call retried", "op", op, "addr", addr, "next", c.Leader(), "err", err)
		if !wait {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s via %s: %w (gave up: %w)", op, addr, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// try runs one attempt of fn at addr.
func (c *Client) try(ctx context.Context, addr string, bound time.Duration, fn func(*attempt) error) error {
	conn, err := c.pool.Get(addr)
	if err != nil {
		return fmt.Errorf("%w: %w", errDial, err)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(bound, func() { cancel(errAttemptTimeout) })
	defer timer.Stop()
	down := c.watch(addr)
	go func() {
		select {
		case <-down:
			cancel(errAddrDown)
		case <-actx.Done():
		}
	}()
	err = FromStatus(fn(&attempt{ctx: actx, conn: conn, timer: timer}))
	if cause := context.Cause(actx); err != nil && ctx.Err() == nil && (cause == errAttemptTimeout || cause == errAddrDown) {
		return fmt.Errorf("%w after %v: %w", cause, bound, err)
	}
	return err
}

// failover decides what follows a failed attempt at addr: ok false for an
// application error (returned to the caller); otherwise the client has
// moved to the next address to try and wait says whether to back off
// first (nothing new was learnt and no time was spent). tried holds the
// addresses this call has tried.
func (c *Client) failover(addr string, err error, tried map[string]bool) (wait, ok bool) {
	var nl *NotLeaderError
	switch {
	case errors.Is(err, errAttemptTimeout):
		c.markDown(addr)
		c.rotate(addr)
		return false, true
	case errors.Is(err, errAddrDown):
		c.rotate(addr)
		return false, true
	case errors.As(err, &nl):
		if hint := nl.LeaderAddr; hint != "" && hint != addr && (!c.isDown(hint) || c.triedAllUp(tried)) {
			// A hint naming an address found unreachable is followed only
			// once every other address has named it too: the others may
			// know a newer leader, and a down mark may be wrong.
			c.follow(hint)
			return false, true
		}
		c.rotate(addr) // an election, or a leader we found unreachable
		return true, true
	case unreachable(err):
		c.markDown(addr)
		c.rotate(addr)
		return true, true
	case errors.Is(err, ErrShutdown) || errors.Is(err, ErrNoQuorum) || errors.Is(err, context.DeadlineExceeded):
		// Reachable but not serving now (stopping, no quorum, a server
		// deadline): try the others; followers lead back here if needed.
		c.rotate(addr)
		return true, true
	}
	return false, false
}

// unreachable reports whether err says the coordinator could not be
// reached: no connection, or one that failed.
func unreachable(err error) bool {
	if errors.Is(err, errDial) {
		return true
	}
	if isOurs(err) {
		return false // an application answer that happens to be UNAVAILABLE-coded
	}
	var we *wireError
	return !errors.As(err, &we) && status.Code(err) == codes.Unavailable
}

// triedAllUp reports whether this call has tried every address that is not
// down.
func (c *Client) triedAllUp(tried map[string]bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.addrs {
		if !tried[a] && !c.downLocked(a) {
			return false
		}
	}
	return true
}

// downFor is how long an address that failed is avoided: hints naming it
// are ignored and rotation skips it while another address is up.
func (c *Client) downFor() time.Duration { return max(3*c.cfg.AttemptTimeout, time.Second) }

// Leader returns the address the client currently calls.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[c.cur]
}

// pick returns the address a call starts at: the current one unless it is
// down and another one is not.
func (c *Client) pick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.downLocked(c.addrs[c.cur]) {
		return c.addrs[c.cur]
	}
	for i := 1; i < len(c.addrs); i++ {
		if j := (c.cur + i) % len(c.addrs); !c.downLocked(c.addrs[j]) {
			c.cur = j
			break
		}
	}
	return c.addrs[c.cur]
}

// follow makes addr (a leader hint) the current address, adding it when new.
func (c *Client) follow(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.addrs, addr)
	if i < 0 {
		c.addrs = append(c.addrs, addr)
		i = len(c.addrs) - 1
	}
	c.cur = i
}

// rotate moves from addr to the next address that is not down, unless
// another call already moved the client elsewhere.
func (c *Client) rotate(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs[c.cur] == addr {
		c.advanceLocked()
	}
}

// advanceLocked moves to the next address that is not down, or simply to
// the next one when all are down.
func (c *Client) advanceLocked() {
	n := len(c.addrs)
	for i := 1; i < n; i++ {
		if j := (c.cur + i) % n; !c.downLocked(c.addrs[j]) {
			c.cur = j
			return
		}
	}
	c.cur = (c.cur + 1) % n
}

// markDown records that addr failed and aborts the other attempts in
// flight there (a long poll or an upload would otherwise wait out its
// own, longer bound on a dead connection).
func (c *Client) markDown(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downUntil[addr] = time.Now().Add(c.downFor())
	if ch, ok := c.downCh[addr]; ok {
		close(ch)
		delete(c.downCh, addr)
	}
}

// up records that addr answered.
func (c *Client) up(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.downUntil, addr)
}

// isDown reports whether addr failed recently.
func (c *Client) isDown(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downLocked(addr)
}

func (c *Client) downLocked(addr string) bool {
	t, ok := c.downUntil[addr]
	return ok && time.Now().Before(t)
}

// watch returns a channel closed when addr is next marked down.
func (c *Client) watch(addr string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.downCh[addr]
	if !ok {
		ch = make(chan struct{})
		c.downCh[addr] = ch
	}
	return ch
}
