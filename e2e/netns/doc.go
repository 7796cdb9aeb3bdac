// Package netns runs whorl as a set of separate hosts on one machine: each
// host is a Linux network namespace with its own veth link to a bridge that
// lives in a namespace of its own, so the hosts talk over real (virtual)
// Ethernet with private addresses that exist only inside the namespaces.
// Faults are made the way they happen: a host's processes killed, its link
// set down, nftables rules dropping all or a random share of its packets,
// and a userspace TCP proxy that delays a link (this kernel has no netem).
//
// The test driver never talks to those addresses from the root namespace:
// Main re-executes the test binary inside a driver namespace attached to the
// same bridge (nsenter --net, keeping the mount namespace so that namespaces
// created by the driver are visible to the parent), and the parent removes
// every namespace and process of the run when the child exits, however it
// exits; namespaces of runs whose process died are removed at the next run.
//
// The tests: the harness itself (hosts reach each other only over the
// bridge, faults cut and restore exactly that, removal leaves nothing);
// TestFaults, 3 coordinators and 4 workers of the real binary per scenario
// (leader killed, worker link down and up, coordinator partitioned, 10%
// loss, SIGTERM, delayed link), each checking that the job finishes with a
// report, committed progress never goes back, every image of an epoch is
// consumed once and training resumes within 5 s; and TestKubernetesBase,
// the pods of k8s/base run as hosts with their manifests' arguments and
// environment and /etc/hosts standing in for cluster DNS.
//
// A failed scenario prints each node's last WHORL_E2E_LOG_LINES log lines
// (25); WHORL_E2E_KEEP_LOGS=DIR keeps every node's whole log under
// DIR/<test name>/, passed or failed.
//
// Everything here needs root, iproute2, nftables and util-linux; without
// root Main runs the tests, which skip with a message saying so.
package netns
