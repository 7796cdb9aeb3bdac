package importgraph

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// listFormat prints one package a line: its path, then its direct imports,
// with runtime/cgo that the go command adds to every package using cgo.
const listFormat = `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{if .CgoFiles}} runtime/cgo{{end}}`

// Load runs `go list -deps ./...` in dir (the module root) and returns the
// non-test import graph of the module's packages and all their dependencies.
func Load(dir string) (Graph, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", listFormat, "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("importgraph: go list -deps in %s: %w: %s", dir, err, stderr.Bytes())
	}
	return parse(string(out)), nil
}

// parse reads the lines of listFormat, dropping cgo's pseudo-package "C"
// (an import, never a dependency) and runtime/cgo's edge to itself.
func parse(s string) Graph {
	g := Graph{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) > 0 {
			g[f[0]] = slices.DeleteFunc(f[1:], func(p string) bool { return p == "C" || p == f[0] })
		}
	}
	return g
}
