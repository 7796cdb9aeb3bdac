package importgraph

// Module is the import path of this module; rule patterns are full paths.
const Module = "github.com/whorl-ml/whorl"

// Rule forbids packages matching From (minus Exempt) to depend, directly or
// transitively and excluding test-only imports, on any package matching a
// Forbid pattern. A pattern ending in "/..." matches that path and every
// package below it; any other pattern matches exactly one import path.
type Rule struct {
	From   string
	Exempt []string
	Forbid []string
	// Why is the reason, printed with every violation.
	Why string
}

// m is the full import path of pattern p of this module.
func m(p string) string { return Module + "/" + p }

// External patterns shared by several rules.
const (
	grpc    = "google.golang.org/grpc/..."
	netHTTP = "net/http/..."
	raft    = "github.com/hashicorp/raft/..."
)

// noNetworking is what model and shard must not link.
var noNetworking = []string{grpc, netHTTP, raft,
	m("cluster/..."), m("coordinator/..."), m("worker/..."), m("proto/..."), m("cmd/...")}

// Rules is the import direction of this module; CONTRIBUTING.md states it.
func Rules() []Rule {
	return []Rule{
		{From: m("model/..."), Forbid: noNetworking,
			Why: "model is computation only: no networking, no cluster roles"},
		{From: m("shard/..."), Forbid: noNetworking,
			Why: "shard is data only: no networking, no cluster roles"},
		{From: m("job/..."), Forbid: []string{m("model/..."), m("cluster/..."), m("coordinator/..."),
			m("worker/..."), m("experiment/..."), m("proto/..."), m("cmd/..."),
			grpc, netHTTP, "gorgonia.org/...", "gonum.org/..."},
			Why: "job is what every role reads: it imports only shard and internal/..."},
		{From: m("coordinator/..."), Forbid: []string{m("experiment/..."), m("model/..."),
			m("worker/..."), "gonum.org/v1/plot/...", "gorgonia.org/..."},
			Why: "the coordinator must not link the experiment or the training engine"},
		{From: m("coordinator/client/..."), Forbid: []string{m("coordinator"), m("job/..."), raft},
			Why: "the client is the wire contract callers link: no raft, no job, not the control plane"},
		{From: m("cluster/..."), Forbid: []string{m("coordinator/..."), m("worker/..."),
			m("experiment/..."), m("model/..."), m("job/...")},
			Why: "cluster is the ring collective only: it knows no job, model or role"},
		{From: m("worker/..."), Forbid: []string{m("experiment/..."), m("cmd/...")},
			Why: "the worker trains with model and job, not with the experiment steps"},
		{From: m("worker/..."), Forbid: []string{m("coordinator"), raft},
			Why: "the worker talks to the coordinator through coordinator/client only, so it links no raft"},
		{From: m("experiment/..."), Forbid: []string{m("coordinator/..."), m("worker/..."),
			m("cluster/...")},
			Why: "the experiment steps run in one process: no cluster roles (proto's types, such as the phase, are shared)"},
		{From: m("bucket/..."), Forbid: []string{m("job/..."), m("model/..."), m("experiment/..."), m("cluster/..."),
			m("coordinator/..."), m("worker/..."), m("session/..."), m("proto/...")},
			Why: "bucket is object storage for shard's packed datasets: it knows no job, model or role"},
		{From: m("operator/..."), Forbid: []string{m("coordinator"), m("worker/..."), m("experiment/..."),
			m("model/..."), raft, "gorgonia.org/...", "gonum.org/..."},
			Why: "the operator is a Kubernetes client of the coordinators: it links coordinator/client and job, not the control plane or the engine"},
		{From: m("..."), Exempt: []string{m("operator/..."), m("cmd/..."), m("e2e/...")},
			Forbid: []string{"sigs.k8s.io/controller-runtime/...", "k8s.io/client-go/..."},
			Why:    "only the operator (and the binary that wires it) talks to the kube-apiserver"},
		{From: m("..."), Exempt: []string{m("cmd/..."), m("session/..."), m("e2e/...")}, Forbid: []string{m("session/...")},
			Why: "session is whorl run's local cluster over the roles: only cmd and the end-to-end tests use it"},
		{From: m("internal/..."), Forbid: []string{m("cmd/..."), m("session/..."), m("coordinator/..."),
			m("worker/..."), m("experiment/..."), m("cluster/..."), m("model/..."), m("job/..."),
			m("shard/..."), m("proto/...")},
			Why: "internal/... is the bottom of the graph: small mechanisms every layer may use, above none"},
		{From: m("..."), Exempt: []string{m("cmd/..."), m("internal/cliflag")}, Forbid: []string{"github.com/spf13/..."},
			Why: "cmd is the only package that reads flags, files and environment (cobra, pflag, viper); internal/cliflag holds its flag values"},
		{From: m("..."), Exempt: []string{m("cmd/...")}, Forbid: []string{m("cmd/...")},
			Why: "cmd is the top of the graph: it reads flags, files and environment"},
	}
}
