package bucket

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/whorl-ml/whorl/shard"
)

// retry runs op up to Attempts times, waiting Backoff (doubling, at most
// MaxBackoff) between attempts, while the error is one the store may
// recover from. The final error wraps shard.ErrStore and names the URL,
// what was done and the attempts made.
func (b *Bucket) retry(ctx context.Context, what string, op func(context.Context) error) error {
	wait := b.opts.Backoff
	var err error
	for a := 1; ; a++ {
		err = b.attempt(ctx, op)
		if err == nil {
			return nil
		}
		if a >= b.opts.Attempts || !transient(ctx, err) {
			return fmt.Errorf("%w: %s %s (%d attempt%s): %w", shard.ErrStore, b.url, what, a, plural(a), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %s %s (%d attempt%s, then %w): %w", shard.ErrStore, b.url, what, a, plural(a), ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, b.opts.MaxBackoff)
	}
}

// attempt runs op once, within AttemptTimeout.
func (b *Bucket) attempt(ctx context.Context, op func(context.Context) error) error {
	if b.opts.AttemptTimeout <= 0 {
		return op(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.AttemptTimeout)
	defer cancel()
	return op(ctx)
}

// transient reports whether err may pass on retry: not when the caller
// gave up, and not for an answer the store will give again.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, errNoBucket) {
		return false
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.PermissionDenied, gcerrors.InvalidArgument,
		gcerrors.FailedPrecondition, gcerrors.Unimplemented, gcerrors.Canceled, gcerrors.AlreadyExists:
		return false
	}
	// An HTTP answer of 4xx (a bad signature is 403 with code Unknown) is
	// the store's verdict, but for a timeout (408) or throttling (429).
	var h interface{ HTTPStatusCode() int }
	if errors.As(err, &h) {
		if c := h.HTTPStatusCode(); c >= 400 && c < 500 && c != 408 && c != 429 {
			return false
		}
	}
	return !errors.Is(err, context.Canceled)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
