// Package k8s holds whorl's Kubernetes deployment as kustomize manifests:
// base/ (the coordinator StatefulSet with its headless Service, client
// Service and PodDisruptionBudget, the elastic worker Deployment, the submit
// Job, the ConfigMap with the whorl flags and the job, NetworkPolicies) and
// the overlays kind (small, local image), production (5 coordinators,
// more workers), s3 (kind with the job's photos packed into a SeaweedFS
// server it deploys, seaweedfs/Dockerfile's image; docker-compose.yaml's s3
// profile is its twin) and node (the image imported, never pulled, requests
// for 2 cores, the node's local volumes). kind/cluster.yaml is the local
// cluster for `make kind-up`; node/ starts and stops a real one-node
// Kubernetes on this machine (`make k8s-node-up`, `make k8s-node-down`:
// etcd, the control plane, kubelet and kube-proxy built from the
// k8s.io/kubernetes module, a containerd of its own, CoreDNS), on which
// e2e/k8snode runs a job through pod deletions (`make k8s-node-test`).
//
// The package has no Go API: its tests render every overlay with kustomize's
// krusty, decode each object strictly with client-go's scheme, and check the
// ports, environment variables and config keys against the flags of the
// whorl binary. verify/ holds the server-side dry-run against a real
// kube-apiserver (`make k8s-verify`).
//
// Ports: coordinator raft 7400 and gRPC 7401 (the binary's defaults),
// worker ring 7410, metrics 9090.
package k8s
