package client

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckArtifactName: only a plain file name passes; anything that could
// leave the download folder (or name it) is refused as ErrBadArtifact.
func TestCheckArtifactName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"finetuned.safetensors", true},
		{"report.md", true},
		{".hidden", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/etc/passwd", false},
		{`..\x`, false},
		{`a\b`, false},
		{"a..b", false},
		{"nul\x00", false},
		{strings.Repeat("a", 256), false},
	} {
		err := CheckArtifactName(tc.name)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadArtifact)) {
			t.Errorf("CheckArtifactName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// FuzzCheckArtifactName: a name that passes stays inside the folder it is
// joined to, as a direct child.
func FuzzCheckArtifactName(f *testing.F) {
	for _, s := range []string{"report.json", "../x", "a/b", `a\b`, "..", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckArtifactName(name) != nil {
			return
		}
		dir := "/out/dir"
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name {
			t.Fatalf("name %q passes but joins to %q", name, p)
		}
	})
}
