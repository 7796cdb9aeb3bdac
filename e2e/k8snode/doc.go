// Package k8snode runs whorl's Kubernetes manifests on a real one-node
// Kubernetes on this machine: the node that k8s/node/up.sh starts (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
// kube-proxy built from the k8s.io/kubernetes module, a containerd of its
// own, CoreDNS, local PersistentVolumes; `make k8s-node-up`). It applies the
// overlay k8s/overlays/node with a short job in place of the quick preset's
// (16 px, a few epochs: minutes on 2 cores), and checks:
//
//	what                                  how
//	the node is Ready                     kubectl get node: condition Ready
//	the coordinators' names resolve       DNS query to the node's CoreDNS for
//	                                      whorl-coordinator-0.whorl-coordinator.whorl.svc.cluster.local
//	3 coordinators form a raft group      StatefulSet rollout (ready = a leader is known),
//	                                      volume claims bound to the node's local volumes
//	2 workers run                         Deployment rollout
//	the submit Job starts the job         whorl status --json (kubectl exec /whorl in a
//	                                      coordinator: the image has no shell) reaches pretraining
//	a worker pod deleted mid-pretraining  committed progress moves again, both workers
//	                                      (one a new pod) registered, progress never goes back
//	the raft leader's pod deleted         a new leader, committed progress moves again
//	mid-pretraining                       and never goes back; the StatefulSet recreates the pod
//	the job ends with a report            the submit Job completes; its log holds the report;
//	                                      status phase PHASE_DONE
//
// TestWhorlJobsOnNode does the same through the WhorlJob operator (its own
// table: the queue, kubectl get whorljobs, whorl fetch and torchvision,
// cancel by deletion, workers scaled to zero).
//
// WHORL_K8S_NODE selects the node: a kubeconfig path of a running node;
// "start" to start one with k8s/node/up.sh (after `make image`) and stop it
// with down.sh when the suite ends; "require" for the node up.sh leaves at
// its default place (/tmp/whorl-node/kubeconfig, or $WHORL_NODE_DIR), failing
// when there is none. Unset, the suite skips. `make k8s-node-test` starts the
// node, runs the suite and stops the node. The node must be this machine's:
// the suite reuses released local volumes by emptying their directories.
package k8snode
