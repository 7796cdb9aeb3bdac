package importgraph

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// realGraph loads the module's graph once for every test that needs it.
var realGraph = sync.OnceValues(func() (Graph, error) { return Load("../..") })

// loadReal returns a copy of the real graph, skipping when go is missing.
func loadReal(t *testing.T) Graph {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot run go list -deps")
	}
	g, err := realGraph()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g[m("model")]; !ok {
		t.Fatalf("graph of %d packages lacks %s: wrong directory?", len(g), m("model"))
	}
	return maps.Clone(g)
}

func TestImportGraph(t *testing.T) {
	for _, v := range Check(loadReal(t), Rules()) {
		t.Error(v)
	}
}

func TestRulesWellFormed(t *testing.T) {
	g := loadReal(t)
	for _, r := range Rules() {
		if r.Why == "" {
			t.Errorf("rule for %s has no Why", r.From)
		}
		for _, p := range append(append([]string{r.From}, r.Exempt...), r.Forbid...) {
			if strings.Contains(strings.TrimSuffix(p, "/..."), "...") || p == "" {
				t.Errorf("pattern %q: only a trailing /... is a wildcard", p)
			}
		}
		if !slices.ContainsFunc(sortedKeys(g), func(p string) bool { return Match(r.From, p) }) {
			t.Errorf("rule From %s matches no package: renamed?", r.From)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{m("coordinator"), m("coordinator"), true},
		{m("coordinator"), m("coordinator/client"), false},
		{m("coordinator/..."), m("coordinator"), true},
		{m("coordinator/..."), m("coordinator/client"), true},
		{m("coordinator/..."), m("coordinatorx"), false},
		{m("model/..."), m("model/gemm"), true},
		{m("model"), m("model/gemm"), false},
		{"net/http/...", "net/http/httptest", true},
		{"net/http/...", "net/httpx", false},
		{"net/http/...", "net", false},
		{grpc, "google.golang.org/grpc/codes", true},
		{grpc, "google.golang.org/grpcx", false},
		{raft, "github.com/hashicorp/raft-boltdb/v2", false},
		{m("..."), m("cmd/whorl"), true},
		{m("..."), "github.com/whorl-ml/whorlx", false},
	} {
		if got := Match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

// TestCheckCatchesAddedEdge adds forbidden edges to the real graph and
// checks each is reported with its chain.
func TestCheckCatchesAddedEdge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		want     []string // violations that must appear
	}{
		{"coordinator->model/gemm", m("coordinator"), m("model/gemm"), []string{
			"coordinator imports model/gemm via coordinator -> model/gemm: the coordinator must not link",
		}},
		{"model->grpc", m("model"), "google.golang.org/grpc", []string{
			"model imports google.golang.org/grpc via model -> google.golang.org/grpc: model is computation",
			"model/recipe imports google.golang.org/grpc via model/recipe -> model -> google.golang.org/grpc:",
		}},
		{"job->model", m("job"), m("model"), []string{
			"job imports model via job -> model: job is what every role reads",
			"coordinator imports model via coordinator -> job -> model: the coordinator must not link",
		}},
		{"shard->cmd", m("shard"), m("cmd/whorl"), []string{
			"shard imports cmd/whorl via shard -> cmd/whorl: shard is data only",
			"job imports cmd/whorl via job -> shard -> cmd/whorl: cmd is the top",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := loadReal(t)
			if slices.Contains(g[tc.from], tc.to) {
				t.Fatalf("%s already imports %s", tc.from, tc.to)
			}
			g[tc.from] = append(slices.Clone(g[tc.from]), tc.to)
			got := strings.Join(vstrings(Check(g, Rules())), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing violation %q in:\n%s", w, got)
				}
			}
		})
	}
}

// TestCheckSynthetic pins the walk on a small graph: it stops at the first
// forbidden package of a path, reports every edge into forbidden packages
// with a shortest chain, and honours Exempt.
func TestCheckSynthetic(t *testing.T) {
	g := Graph{
		"p/a": {"p/b", "p/c"}, "p/b": {"p/d"}, "p/c": {"p/d", "p/x/y"}, "p/d": {"p/x"},
		"p/x": {"p/x/y"}, "p/x/y": {"p/z"}, "p/z": nil, "p/e": {"p/z"},
	}
	for _, tc := range []struct {
		from, exempt string
		want         []string
	}{
		{"p/a", "", []string{"a: p/c -> p/x/y", "a: p/b -> p/d -> p/x"}},
		{"p/c", "", []string{"c: p/x/y", "c: p/d -> p/x"}},
		{"p/e", "", []string{"e: p/z"}},
		{"p/...", "p/x/...", []string{"a: p/c -> p/x/y", "a: p/b -> p/d -> p/x",
			"b: p/d -> p/x", "c: p/x/y", "c: p/d -> p/x", "d: p/x", "e: p/z"}},
		{"p/z", "", nil},
		{"q/...", "", nil},
	} {
		r := Rule{From: tc.from, Forbid: []string{"p/x/...", "p/z"}, Why: "w"}
		if tc.exempt != "" {
			r.Exempt = []string{tc.exempt}
		}
		var got []string
		for _, v := range Check(g, []Rule{r}) {
			got = append(got, v.Pkg[2:]+": "+strings.Join(v.Chain[1:], " -> "))
			if v.Chain[0] != v.Pkg || v.Chain[len(v.Chain)-1] != v.Dep || v.Rule.Why != "w" {
				t.Errorf("From %s: malformed %+v", tc.from, v)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("From %s: got %q, want %q", tc.from, got, tc.want)
		}
	}
}

// vstrings formats violations.
func vstrings(vs []Violation) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return s
}

// TestClosureIsGoListDeps: what Check walks from a module package is exactly
// the Deps that `go list -deps` reports for it.
func TestClosureIsGoListDeps(t *testing.T) {
	g := loadReal(t)
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for pkg, deps := range parse(string(out)) {
		got := closure(g, pkg)
		if !slices.Equal(got, slices.Sorted(slices.Values(deps))) {
			t.Errorf("%s: walk reaches %d packages, go list -deps %d", pkg, len(got), len(deps))
		}
	}
}

// closure is every package reachable from pkg in g, sorted, pkg excluded.
func closure(g Graph, pkg string) []string {
	seen := map[string]bool{pkg: true}
	for queue := []string{pkg}; len(queue) > 0; queue = queue[1:] {
		for _, d := range g[queue[0]] {
			if !seen[d] {
				seen[d] = true
				queue = append(queue, d)
			}
		}
	}
	delete(seen, pkg)
	return slices.Sorted(maps.Keys(seen))
}
