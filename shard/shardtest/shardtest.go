// Package shardtest makes data folders for other packages' tests.
package shardtest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/shard"
)

// EmbeddedFolder writes the first perClass photos (by path) of the first
// classes classes of the embedded set into a class folder in a temporary
// directory of t and returns it: real photos, the same on every call.
func EmbeddedFolder(t testing.TB, classes, perClass int) string {
	t.Helper()
	src, err := shard.EmbeddedSource()
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(src))
	for p := range src {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dir := t.TempDir()
	count := map[string]int{}
	for _, p := range paths {
		class, _, ok := strings.Cut(p, "/")
		if !ok || (count[class] == 0 && len(count) == classes) || count[class] == perClass {
			continue
		}
		count[class]++
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), src[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
