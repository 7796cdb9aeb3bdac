package main

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
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

// transportFlag defines the flag name, how ring lanes carry their chunks.
func transportFlag(fs *pflag.FlagSet, p *string, name string) {
	Enum(fs, p, name, cluster.Direct.String(), []string{cluster.Direct.String(), cluster.InStream.String()},
		"how ring lanes carry chunks: direct TCP beside gRPC on the same port, or inside the gRPC stream")
}

// tlsFlags binds --tls-cert, --tls-key, --tls-ca and --trust-domain to t;
// cert says what the certificate is (e.g. "PEM client certificate").
func tlsFlags(f *pflag.FlagSet, t *tlsfiles.Files, cert string) {
	f.StringVar(&t.Cert, "tls-cert", "", cert+" for mTLS, its SPIFFE ID spiffe://<trust-domain>/<role>/<name> as URI SAN (with --tls-key and --tls-ca; whorl certs makes them)")
	f.StringVar(&t.Key, "tls-key", "", "PEM private key for mTLS")
	f.StringVar(&t.CA, "tls-ca", "", "PEM CA certificate that signs every whorl peer")
	f.StringVar(&t.TrustDomain, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain of every whorl identity")
}

// insecureFlag binds --insecure: plaintext beyond loopback.
func insecureFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "insecure", false, "allow plaintext (no --tls-*) on a non-loopback address: anyone who reaches the ports can call everything")
}

// byteSize is an int64 flag in bytes that accepts unit suffixes.
type byteSize struct {
	p        *int64
	min, max int64
}

// ByteSize defines a size flag (1048576, 64KiB, 16MiB, 1GiB, 16MB) limited to [min, max].
func ByteSize(fs *pflag.FlagSet, p *int64, name string, def, min, max int64, usage string) {
	*p = def
	fs.Var(&byteSize{p: p, min: min, max: max}, name,
		fmt.Sprintf("%s (%s..%s)", usage, formatBytes(min), formatBytes(max)))
}

func (b *byteSize) String() string { return formatBytes(*b.p) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return fmt.Errorf("%w; accepted range is %s..%s", err, formatBytes(b.min), formatBytes(b.max))
	}
	if n < b.min || n > b.max {
		return fmt.Errorf("%s is out of range; accepted range is %s..%s", s, formatBytes(b.min), formatBytes(b.max))
	}
	*b.p = n
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

// parseBytes reads a size such as 1048576, 64KiB, 16MiB or 1GiB.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 64KiB or 16MiB", s)
	}
	return int64(v * float64(mult)), nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits[:3] {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}
