// Package validate is whorl's one style of configuration checks, after
// hashicorp/raft's Config/DefaultConfig/ValidateConfig: a Validate method
// collects every problem (not just the first), each naming the field (the
// Go field, flag or JSON path the user wrote) and the accepted bound, and
// returns them joined, each wrapping the package's ErrConfig sentinel so
// callers test errors.Is(err, pkg.ErrConfig).
//
//	p := validate.New(ErrConfig, "")
//	validate.InRange(p, "Streams", c.Streams, 1, MaxStreams)
//	if c.Election < c.Heartbeat {
//		p.Addf("RaftElectionTimeout", "= %v, must be at least RaftHeartbeatTimeout (%v)", c.Election, c.Heartbeat)
//	}
//	return p.Err()
package validate

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// Problems collects the problems of one configuration value.
type Problems struct {
	sentinel error
	prefix   string
	errs     []error
}

// New starts the checks of one value; every problem wraps sentinel (whose
// text says what was checked, e.g. "invalid worker configuration") and
// names its field after prefix (e.g. "SGD " when one sentinel covers
// several configurations; usually "").
func New(sentinel error, prefix string) *Problems {
	return &Problems{sentinel: sentinel, prefix: prefix}
}

// Addf records a problem of field; the message follows the field name, e.g.
// Addf("ID", "must not be empty").
func (p *Problems) Addf(field, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%w: %s%s %s", p.sentinel, p.prefix, field, fmt.Sprintf(format, args...)))
}

// Wrap records a problem of field caused by err (kept for errors.Is).
func (p *Problems) Wrap(field string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%w: %s%s: %w", p.sentinel, p.prefix, field, err))
}

// InRange records a problem unless lo <= v <= hi (NaN is out of range).
func InRange[T cmp.Ordered](p *Problems, field string, v, lo, hi T) {
	if !(v >= lo && v <= hi) {
		p.Addf(field, "= %v, must be in %v..%v", v, lo, hi)
	}
}

// OneOf records a problem unless v is one of the allowed values.
func OneOf[T comparable](p *Problems, field string, v T, allowed ...T) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprint(a)
	}
	p.Addf(field, "= %v, must be one of %s", v, strings.Join(names, ", "))
}

// Len is the number of problems recorded so far.
func (p *Problems) Len() int { return len(p.errs) }

// Err is every problem joined, or nil when there is none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
