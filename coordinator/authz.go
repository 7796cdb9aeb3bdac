package coordinator

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Who may call what on a coordinator's gRPC port with mutual TLS (DESIGN.md,
// "Trust"). A worker acts only for its own id (the request's worker_id, or
// a checkpoint header's, must equal its identity's name).
var (
	workers        = []identity.Role{identity.Worker}
	clients        = []identity.Role{identity.Client}
	coordinators   = []identity.Role{identity.Coordinator}
	everyone       = identity.Roles
	workersOrUsers = []identity.Role{identity.Worker, identity.Client}
)

// method is the full gRPC method name of a CoordinatorService method.
func method(name string) string {
	return "/" + pb.CoordinatorService_ServiceDesc.ServiceName + "/" + name
}

// checkpointWorker is the worker a CommitCheckpoint message acts for (its
// header; the data chunks name none).
func checkpointWorker(msg any) (string, bool) {
	m, ok := msg.(*pb.CommitCheckpointRequest)
	if !ok || m.GetHeader() == nil {
		return "", false
	}
	return m.GetHeader().GetWorkerId(), true
}

// authzTable is the coordinator's authorization table.
func authzTable() map[string]identity.Rule {
	self := identity.Rule{Roles: workers, WorkerOf: identity.WorkerID}
	return map[string]identity.Rule{
		method("RegisterWorker"):                            self,
		method("Heartbeat"):                                 self,
		method("LeaveWorker"):                               self,
		method("GetAssignment"):                             self,
		method("ReportProgress"):                            self,
		method("CommitCheckpoint"):                          {Roles: workers, WorkerOf: checkpointWorker},
		method("FetchImages"):                               {Roles: workers},
		method("FetchCheckpoint"):                           {Roles: workersOrUsers},
		method("SubmitJob"):                                 {Roles: clients},
		method("JobStatus"):                                 {Roles: everyone},
		method("FetchResults"):                              {Roles: clients},
		method("CancelJob"):                                 {Roles: clients},
		"/" + pb.PeerService_ServiceDesc.ServiceName + "/":  {Roles: coordinators},
		"/" + healthpb.Health_ServiceDesc.ServiceName + "/": {Roles: everyone},
	}
}

// policy is the node's authorization: the table, with every refusal logged
// and counted in whorl_coordinator_denied_total.
func (n *Node) policy() identity.Policy {
	return identity.Policy{
		Server:  "coordinator " + n.cfg.ID,
		Methods: authzTable(),
		Denied: func(m string, id identity.ID, err error) {
			n.metrics.denied.WithLabelValues(m, string(id.Role)).Inc()
			n.log.Warn("call refused", "method", m, "peer", id.String(), "err", err)
		},
	}
}

// checkSelf refuses a certificate that is not this coordinator's identity.
func (n *Node) checkSelf() error {
	if err := n.tls.RequireSelf(n.cfg.TLS, identity.Coordinator, n.cfg.ID); err != nil {
		return fmt.Errorf("coordinator %s: %w: %w", n.cfg.ID, ErrConfig, err)
	}
	return nil
}

// warnPlaintext warns once when Insecure let raft or gRPC serve plaintext
// beyond loopback.
func (n *Node) warnPlaintext() {
	if n.tls.Enabled() || !n.cfg.Insecure {
		return
	}
	if !tlsfiles.Loopback(n.cfg.RaftAddr) || !tlsfiles.Loopback(n.cfg.GRPCAddr) {
		n.log.Warn("serving plaintext beyond loopback (--insecure): anyone who reaches the raft or gRPC port can call everything",
			"raft", n.cfg.RaftAddr, "grpc", n.cfg.GRPCAddr)
	}
}

// allowRaftPeer admits a raft connection from a configured peer only.
func (n *Node) allowRaftPeer(id identity.ID) error {
	if slices.ContainsFunc(n.peers, func(p Peer) bool { return p.ID == id.Name }) ||
		(len(n.peers) == 0 && id.Name == n.cfg.ID) {
		return nil
	}
	n.metrics.denied.WithLabelValues("raft", string(id.Role)).Inc()
	return fmt.Errorf("%w: %s is not a raft peer of coordinator %s", identity.ErrPermissionDenied, id, n.cfg.ID)
}

// deniedCounter counts refused calls by method and role.
func deniedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "whorl_coordinator_denied_total",
		Help: "Calls and raft connections refused by authorization, by method (or raft) and the caller's role.",
	}, []string{"method", "role"})
}
