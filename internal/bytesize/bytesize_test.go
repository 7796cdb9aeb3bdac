package bytesize

import "testing"

func TestHuman(t *testing.T) {
	for b, want := range map[int64]string{0: "0.0 MiB", 5 << 20: "5.0 MiB", 1<<30 - 1<<20: "1023.0 MiB", 1 << 30: "1.0 GiB", 33 << 29: "16.5 GiB"} {
		if got := Human(b); got != want {
			t.Errorf("Human(%d) = %q, want %q", b, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"1MiB", 1 << 20, true}, {"16MiB", 16 << 20, true},
		{"64KiB", 64 << 10, true}, {"1GiB", 1 << 30, true}, {"2MB", 2e6, true}, {" 3 MiB ", 3 << 20, true},
		{"MiB", 0, false}, {"-1MiB", 0, false}, {"1XiB", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d (ok=%v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 4: "4", 1000: "1000", 4 << 10: "4KiB", 64 << 20: "64MiB", 3 << 30: "3GiB", 1<<20 + 1: "1048577"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
		if back, err := Parse(Format(n)); err != nil || back != n {
			t.Errorf("Parse(Format(%d)) = %d, %v", n, back, err)
		}
	}
}
