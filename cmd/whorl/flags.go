package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// intRange is an int flag that accepts only values in [min, max].
type intRange struct {
	p        *int
	min, max int
}

// IntRange defines an int flag that rejects values outside [min, max] with
// a message that names the accepted range.
func IntRange(fs *pflag.FlagSet, p *int, name string, def, min, max int, usage string) {
	*p = def
	fs.Var(&intRange{p: p, min: min, max: max}, name, fmt.Sprintf("%s (%d..%d)", usage, min, max))
}

func (r *intRange) String() string { return strconv.Itoa(*r.p) }
func (r *intRange) Type() string   { return "int" }

func (r *intRange) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a whole number; accepted range is %d..%d", s, r.min, r.max)
	}
	if n < r.min || n > r.max {
		return fmt.Errorf("%d is out of range; accepted range is %d..%d", n, r.min, r.max)
	}
	*r.p = n
	return nil
}

// floatRange is a float64 flag that accepts only values in [min, max].
type floatRange struct {
	p        *float64
	min, max float64
}

// FloatRange defines a float64 flag limited to [min, max].
func FloatRange(fs *pflag.FlagSet, p *float64, name string, def, min, max float64, usage string) {
	*p = def
	fs.Var(&floatRange{p: p, min: min, max: max}, name, fmt.Sprintf("%s (%g..%g)", usage, min, max))
}

func (r *floatRange) String() string { return strconv.FormatFloat(*r.p, 'g', -1, 64) }
func (r *floatRange) Type() string   { return "float" }

func (r *floatRange) Set(s string) error {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number; accepted range is %g..%g", s, r.min, r.max)
	}
	if x < r.min || x > r.max {
		return fmt.Errorf("%g is out of range; accepted range is %g..%g", x, r.min, r.max)
	}
	*r.p = x
	return nil
}

// durationRange is a time.Duration flag limited to [min, max].
type durationRange struct {
	p        *time.Duration
	min, max time.Duration
}

// DurationRange defines a duration flag limited to [min, max].
func DurationRange(fs *pflag.FlagSet, p *time.Duration, name string, def, min, max time.Duration, usage string) {
	*p = def
	fs.Var(&durationRange{p: p, min: min, max: max}, name, fmt.Sprintf("%s (%v..%v)", usage, min, max))
}

func (r *durationRange) String() string { return r.p.String() }
func (r *durationRange) Type() string   { return "duration" }

func (r *durationRange) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10s or 2m; accepted range is %v..%v", s, r.min, r.max)
	}
	if d < r.min || d > r.max {
		return fmt.Errorf("%v is out of range; accepted range is %v..%v", d, r.min, r.max)
	}
	*r.p = d
	return nil
}

// enum is a string flag limited to a fixed set of choices.
type enum struct {
	p       *string
	choices []string
}

// Enum defines a string flag that accepts only one of choices.
func Enum(fs *pflag.FlagSet, p *string, name, def string, choices []string, usage string) {
	*p = def
	fs.Var(&enum{p: p, choices: choices}, name, fmt.Sprintf("%s (one of %s)", usage, strings.Join(choices, "|")))
}

func (e *enum) String() string { return *e.p }
func (e *enum) Type() string   { return "string" }

func (e *enum) Set(s string) error {
	for _, c := range e.choices {
		if s == c {
			*e.p = s
			return nil
		}
	}
	return fmt.Errorf("%q is not accepted; choose one of %s", s, strings.Join(e.choices, ", "))
}
