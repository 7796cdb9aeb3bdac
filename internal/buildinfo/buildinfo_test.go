package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestCurrent(t *testing.T) {
	b := Current("v1.2.3", "abc")
	if b.Version != "v1.2.3" || b.Commit != "abc" || b.GoVersion != runtime.Version() || !strings.Contains(b.Platform, "/") {
		t.Errorf("Current = %+v", b)
	}
	if got := Current("dev", "").Commit; got == "" {
		t.Error("an unset commit stays empty, want the VCS revision or unknown")
	}
	if s := b.String(); s != "whorl v1.2.3 (commit abc, "+runtime.Version()+", "+b.Platform+")" {
		t.Errorf("String = %q", s)
	}
}
