package bytesize

import "testing"

func TestHuman(t *testing.T) {
	for b, want := range map[int64]string{0: "0.0 MiB", 5 << 20: "5.0 MiB", 1<<30 - 1<<20: "1023.0 MiB", 1 << 30: "1.0 GiB", 33 << 29: "16.5 GiB"} {
		if got := Human(b); got != want {
			t.Errorf("Human(%d) = %q, want %q", b, got, want)
		}
	}
}
