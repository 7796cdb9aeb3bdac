package gemm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGeneratedKernels checks that the committed assembly is what gen_kernels.go writes, so a
// hand edit of a .s file (or a generator change not regenerated) fails the build's tests.
func TestGeneratedKernels(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("go tool not found at %s: %v", goBin, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "run", "gen_kernels.go", "-dir", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_kernels.go: %v\n%s", err, out)
	}
	for _, name := range []string{"kernel_avx512_amd64.s", "kernel_avx2_amd64.s"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from gen_kernels.go's output: run go generate in model/gemm", name)
		}
	}
}
