package importgraph

import (
	"fmt"
	"slices"
	"strings"
)

// Graph maps an import path to the import paths it imports directly
// (non-test imports only, as `go list -deps` reports them).
type Graph map[string][]string

// Violation is one edge by which Pkg reaches Dep, a package its rule forbids.
type Violation struct {
	// Pkg is the package the rule applies to; Dep the forbidden package.
	Pkg, Dep string
	// Chain is a shortest import chain from Pkg to Dep over allowed packages.
	Chain []string
	// Rule is the rule broken.
	Rule Rule
}

// String reads "coordinator imports model via coordinator -> job -> model:
// why", with this module's prefix trimmed.
func (v Violation) String() string {
	chain := make([]string, len(v.Chain))
	for i, p := range v.Chain {
		chain[i] = short(p)
	}
	return fmt.Sprintf("%s imports %s via %s: %s",
		short(v.Pkg), short(v.Dep), strings.Join(chain, " -> "), v.Rule.Why)
}

// short trims this module's prefix from an import path.
func short(p string) string {
	if p == Module {
		return p
	}
	return strings.TrimPrefix(p, Module+"/")
}

// Match reports whether import path p matches pattern: "x/..." is x and
// everything below it, anything else matches exactly.
func Match(pattern, p string) bool {
	if root, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == root || strings.HasPrefix(p, root+"/")
	}
	return p == pattern
}

// matchAny reports whether p matches one of patterns.
func matchAny(patterns []string, p string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return Match(pat, p) })
}

// Check returns the violations of every rule (pending ones included) in g,
// by package, then in the order of rules, nearest forbidden package first.
func Check(g Graph, rules []Rule) []Violation {
	var out []Violation
	for _, pkg := range sortedKeys(g) {
		for _, r := range rules {
			if Match(r.From, pkg) && !matchAny(r.Exempt, pkg) {
				out = append(out, checkOne(g, pkg, r)...)
			}
		}
	}
	return out
}

// checkOne walks g breadth-first from pkg without entering forbidden
// packages and reports every forbidden package an allowed one imports.
func checkOne(g Graph, pkg string, r Rule) []Violation {
	parent := map[string]string{pkg: ""}
	var out []Violation
	for queue := []string{pkg}; len(queue) > 0; queue = queue[1:] {
		for _, dep := range g[queue[0]] {
			if _, seen := parent[dep]; seen {
				continue
			}
			parent[dep] = queue[0]
			if matchAny(r.Forbid, dep) {
				out = append(out, Violation{Pkg: pkg, Dep: dep, Chain: chain(parent, dep), Rule: r})
				continue
			}
			queue = append(queue, dep)
		}
	}
	return out
}

// chain follows parent links from p back to the root, root first.
func chain(parent map[string]string, p string) []string {
	var c []string
	for ; p != ""; p = parent[p] {
		c = append(c, p)
	}
	slices.Reverse(c)
	return c
}

// sortedKeys returns the packages of g in order.
func sortedKeys(g Graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
