package bytesize

import "fmt"

// Human is b in MiB, or in GiB from 1 GiB, with one decimal ("659.7 MiB",
// "16.5 GiB").
func Human(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
