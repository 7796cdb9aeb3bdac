package cliflag

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/whorl-ml/whorl/internal/bytesize"
)

// bounded is a flag value of an ordered type that accepts only values in
// [min, max]; its errors name the accepted range (pflag adds the flag name).
type bounded[T cmp.Ordered] struct {
	p        *T
	min, max T
	typ      string // the type shown in help
	what     string // what a value must look like, for parse errors
	parse    func(string) (T, error)
	format   func(T) string
}

func (b *bounded[T]) String() string { return b.format(*b.p) }
func (b *bounded[T]) Type() string   { return b.typ }

func (b *bounded[T]) Set(s string) error {
	v, err := b.parse(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not %s; accepted range is %s..%s", s, b.what, b.format(b.min), b.format(b.max))
	}
	if v < b.min || v > b.max {
		return fmt.Errorf("%s is out of range; accepted range is %s..%s", b.format(v), b.format(b.min), b.format(b.max))
	}
	*b.p = v
	return nil
}

// defineBounded registers b under name with its default and the range in the usage text.
func defineBounded[T cmp.Ordered](fs *pflag.FlagSet, b *bounded[T], name string, def T, usage string) {
	*b.p = def
	fs.Var(b, name, fmt.Sprintf("%s (%s..%s)", usage, b.format(b.min), b.format(b.max)))
}

// IntRange defines an int flag that rejects values outside [min, max] with
// a message that names the accepted range.
func IntRange(fs *pflag.FlagSet, p *int, name string, def, min, max int, usage string) {
	defineBounded(fs, &bounded[int]{p: p, min: min, max: max, typ: "int", what: "a whole number",
		parse: strconv.Atoi, format: strconv.Itoa}, name, def, usage)
}

// FloatRange defines a float64 flag limited to [min, max].
func FloatRange(fs *pflag.FlagSet, p *float64, name string, def, min, max float64, usage string) {
	defineBounded(fs, &bounded[float64]{p: p, min: min, max: max, typ: "float", what: "a number",
		parse:  func(s string) (float64, error) { return strconv.ParseFloat(s, 64) },
		format: func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }}, name, def, usage)
}

// DurationRange defines a duration flag limited to [min, max].
func DurationRange(fs *pflag.FlagSet, p *time.Duration, name string, def, min, max time.Duration, usage string) {
	defineBounded(fs, &bounded[time.Duration]{p: p, min: min, max: max, typ: "duration",
		what: "a duration such as 10s or 2m", parse: time.ParseDuration,
		format: time.Duration.String}, name, def, usage)
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

// byteSize is an int64 flag in bytes that accepts unit suffixes.
type byteSize struct {
	p        *int64
	min, max int64
}

// ByteSize defines a size flag (1048576, 64KiB, 16MiB, 1GiB, 16MB: the
// forms of bytesize.Parse) limited to [min, max].
func ByteSize(fs *pflag.FlagSet, p *int64, name string, def, min, max int64, usage string) {
	*p = def
	fs.Var(&byteSize{p: p, min: min, max: max}, name,
		fmt.Sprintf("%s (%s..%s)", usage, bytesize.Format(min), bytesize.Format(max)))
}

func (b *byteSize) String() string { return bytesize.Format(*b.p) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := bytesize.Parse(s)
	if err != nil {
		return fmt.Errorf("%w; accepted range is %s..%s", err, bytesize.Format(b.min), bytesize.Format(b.max))
	}
	if n < b.min || n > b.max {
		return fmt.Errorf("%s is out of range; accepted range is %s..%s", s, bytesize.Format(b.min), bytesize.Format(b.max))
	}
	*b.p = n
	return nil
}
