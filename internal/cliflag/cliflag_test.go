package cliflag

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestRangesRefuseNamingTheRange: every value type keeps its default, takes
// a value in range and refuses one outside it (or malformed) with a
// message naming the flag and the accepted values.
func TestRangesRefuseNamingTheRange(t *testing.T) {
	var (
		i    int
		f    float64
		d    time.Duration
		e    string
		size int64
	)
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	IntRange(fs, &i, "n", 3, 1, 9, "count")
	FloatRange(fs, &f, "x", 0.5, 0, 1, "share")
	DurationRange(fs, &d, "wait", time.Second, time.Millisecond, time.Minute, "wait")
	Enum(fs, &e, "mode", "a", []string{"a", "b"}, "mode")
	ByteSize(fs, &size, "bytes", 1<<20, 4, 1<<30, "size")
	if i != 3 || f != 0.5 || d != time.Second || e != "a" || size != 1<<20 {
		t.Fatalf("defaults: %d %g %v %q %d", i, f, d, e, size)
	}
	if u := fs.Lookup("bytes").Usage; !strings.Contains(u, "(4..1GiB)") {
		t.Errorf("usage %q does not name the range", u)
	}
	if err := fs.Parse([]string{"--n", "9", "--x", "1", "--wait", "2s", "--mode", "b", "--bytes", "16MiB"}); err != nil {
		t.Fatal(err)
	}
	if i != 9 || f != 1 || d != 2*time.Second || e != "b" || size != 16<<20 {
		t.Fatalf("parsed: %d %g %v %q %d", i, f, d, e, size)
	}
	for _, bad := range []struct{ args, want string }{
		{"--n=10", "accepted range is 1..9"}, {"--n=x", "is not a whole number"},
		{"--x=1.5", "accepted range is 0..1"}, {"--wait=2h", "accepted range is 1ms..1m0s"},
		{"--mode=c", "choose one of a, b"}, {"--bytes=2GiB", "accepted range is 4..1GiB"}, {"--bytes=lots", "is not a size"},
	} {
		err := fs.Parse([]string{bad.args})
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), strings.SplitN(bad.args, "=", 2)[0]) {
			t.Errorf("%s: %v, want an error naming the flag and %q", bad.args, err, bad.want)
		}
	}
}
