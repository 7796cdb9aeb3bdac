package k8snode

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// coordinatorName is coordinator 0's stable name through the headless Service.
const coordinatorName = "whorl-coordinator-0.whorl-coordinator.whorl.svc.cluster.local"

// TestJobThroughPodDeletions deploys k8s/overlays/node with a short job,
// deletes a worker pod and then the raft leader's pod while the job
// pretrains, and checks that the job ends done with its report.
func TestJobThroughPodDeletions(t *testing.T) {
	c := requireNode(t)
	start := time.Now()
	c.mustWait(3*time.Minute, "wait", "--for=condition=Ready", "node", "--all")
	c.reset()
	if os.Getenv("WHORL_K8S_NODE") != "start" { // down.sh removes everything otherwise
		t.Cleanup(c.reset)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dump()
		}
	})
	c.must("apply", "-k", shortJobOverlay(t, 12))
	c.mustWait(5*time.Minute, "-n", ns, "rollout", "status", "statefulset/whorl-coordinator")
	c.mustWait(5*time.Minute, "-n", ns, "rollout", "status", "deployment/whorl-worker")
	t.Logf("3 coordinators (a raft leader known) and 2 workers ready %v after apply", time.Since(start).Round(time.Second))
	phases := c.must("-n", ns, "get", "pvc", "-o", "jsonpath={.items[*].status.phase}")
	if strings.Fields(phases) == nil || strings.Trim(phases, "Bound ") != "" {
		t.Errorf("the coordinators' volume claims: phases %q, want all Bound", phases)
	}
	addrs, err := c.resolve(coordinatorName)
	if err != nil || len(addrs) == 0 {
		t.Errorf("the node's CoreDNS does not resolve %s: %v %v", coordinatorName, addrs, err)
	} else {
		t.Logf("%s resolves to %v", coordinatorName, addrs)
	}

	f := &faults{c: c, t: t}
	f.wait("pretraining under way", 5*time.Minute, 10)
	f.podDeletions()
	c.mustWait(5*time.Minute, "-n", ns, "rollout", "status", "statefulset/whorl-coordinator")

	c.waitJob(20 * time.Minute)
	logs := c.must("-n", ns, "logs", "job/whorl-submit")
	if !strings.Contains(logs, "report: ") || !strings.Contains(logs, `"gain"`) {
		t.Errorf("the submit Job's log has no report:\n%s", tail(logs, 20))
	}
	end, err := c.status()
	if err != nil || end.Phase != "PHASE_DONE" {
		t.Errorf("job status %+v %v, want PHASE_DONE", end, err)
	}
	for _, r := range f.resumes {
		t.Log(r)
	}
	t.Logf("the job ran to its report %v after apply", time.Since(start).Round(time.Second))
}

// shortJobOverlay writes a kustomization over k8s/overlays/node whose job is
// k8s/base/job.json (the quick preset) cut to 16 px, epochs pretraining and
// 2 fine-tuning epochs, and returns its directory.
func shortJobOverlay(t *testing.T, epochs int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "k8s", "base", "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	j["data"].(map[string]any)["image_size"] = 16
	j["pretrain"].(map[string]any)["epochs"] = epochs
	j["supervised"].(map[string]any)["epochs"] = 2
	out, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// kustomize takes a base by a relative path only.
	base, err := filepath.Rel(dir, filepath.Join(root, "k8s", "overlays", "node"))
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
configMapGenerator:
  - name: whorl-config
    behavior: merge
    files:
      - job.json
`, base)
	for name, data := range map[string][]byte{"job.json": out, "kustomization.yaml": []byte(k)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// reset deletes the namespace and makes the node's released local volumes
// available again, emptied (the node is this machine: their paths are here).
func (c *cluster) reset() {
	c.t.Helper()
	c.deleteWhorlJobs()
	c.must("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=100s")
	out := c.must("get", "pv", "-o", `jsonpath={range .items[?(@.status.phase=="Released")]}{.metadata.name} {.spec.local.path}{"\n"}{end}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, path, ok := strings.Cut(line, " ")
		if !ok || path == "" {
			continue
		}
		ents, err := os.ReadDir(path)
		if err != nil {
			c.t.Fatalf("volume %s: %v (the suite must run on the node's machine)", name, err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(path, e.Name())); err != nil {
				c.t.Fatal(err)
			}
		}
		c.must("patch", "pv", name, "--type", "json", "-p", `[{"op":"remove","path":"/spec/claimRef"}]`)
	}
}

// deleteWhorlJobs deletes the namespace's WhorlJobs while the operator still
// runs, so it removes their finalizers: a namespace deleted with them and
// the operator at once waits for ever. Finalizers still there after a
// minute (no operator) are dropped. No WhorlJob CRD: nothing to do.
func (c *cluster) deleteWhorlJobs() {
	if _, err := c.run("get", "crd", "whorljobs.whorl-ml.github.io"); err != nil {
		return
	}
	if _, err := c.run("-n", ns, "delete", "whorljobs", "--all", "--ignore-not-found", "--timeout=60s"); err == nil {
		return
	}
	names, _ := c.run("-n", ns, "get", "whorljobs", "-o", "jsonpath={.items[*].metadata.name}")
	for _, name := range strings.Fields(names) {
		_, _ = c.run("-n", ns, "patch", "whorljob", name, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	}
}

// waitJob waits for the submit Job to complete, failing when it fails.
func (c *cluster) waitJob(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		out := c.must("-n", ns, "get", "job", "whorl-submit", "-o",
			`jsonpath={range .status.conditions[?(@.status=="True")]}{.type} {end}`)
		switch {
		case strings.Contains(out, "Complete"):
			return
		case strings.Contains(out, "Failed"):
			logs, _ := c.run("-n", ns, "logs", "job/whorl-submit")
			c.t.Fatalf("the submit Job failed:\n%s", tail(logs, 30))
		}
		time.Sleep(5 * time.Second)
	}
	c.t.Fatalf("the submit Job did not complete within %v", d)
}

// faults injects pod deletions and times the resumption of committed
// progress, which must never go back.
type faults struct {
	c       *cluster
	t       *testing.T
	best    int    // highest committed progress seen
	last    status // the last status that waited for progress
	resumes []string
}

// check records a status, failing when committed progress went back.
func (f *faults) check(s status) {
	if s.Phase == "PHASE_PRETRAINING" {
		if s.progress() < f.best {
			f.t.Errorf("committed progress went back: epoch %d step %d after %d (generation %s, leader %s)",
				s.Epoch, s.NextStep, f.best, s.Generation, s.LeaderID)
		}
		f.best = max(f.best, s.progress())
	}
}

// waitFor polls the status until ok or the deadline, failing the test then.
func (f *faults) waitFor(what string, d time.Duration, ok func(status) bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	var s status
	var err error
	for time.Since(start) < d {
		if s, err = f.c.status(); err == nil {
			f.check(s)
			if ok(s) {
				f.last = s
				return time.Since(start)
			}
		}
		time.Sleep(time.Second)
	}
	f.c.dump()
	f.t.Fatalf("%s: not within %v (last status %+v, %v)", what, d, s, err)
	return 0
}

// wait waits until pretraining has committed steps more steps than now.
func (f *faults) wait(what string, d time.Duration, steps int) time.Duration {
	f.t.Helper()
	from := f.best
	return f.waitFor(what, d, func(s status) bool {
		switch s.Phase {
		case "PHASE_UNSPECIFIED", "PHASE_PENDING", "PHASE_PRETRAINING": // not submitted yet, preparing, training
		default:
			f.t.Fatalf("%s: the job is %s already; the faults need a longer pretraining", what, s.Phase)
		}
		return s.Phase == "PHASE_PRETRAINING" && s.progress() >= from+steps
	})
}

// podDeletions deletes one of the two worker pods, then the raft leader's
// pod, each while the job pretrains, waiting for progress after each.
func (f *faults) podDeletions() {
	f.t.Helper()
	c := f.c
	workers := strings.Fields(c.must("-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=worker",
		"-o", "jsonpath={.items[*].metadata.name}"))
	if len(workers) != 2 {
		f.t.Fatalf("worker pods %v, want 2", workers)
	}
	f.run("delete worker pod "+workers[0], workers[0], func() {
		c.must("-n", ns, "delete", "pod", workers[0], "--wait=false")
	})
	old := f.last.LeaderID
	if resumed := f.run("delete the raft leader's pod "+old, "", func() {
		c.must("-n", ns, "delete", "pod", old, "--wait=false")
	}); resumed.LeaderID == old {
		f.t.Errorf("%s still leads after its pod was deleted", old)
	}
}

// run injects a fault, waits for progress to move again, then for two
// workers registered, gone (a deleted worker pod's id, its pod name) not
// among them, and steps of that generation (so that the next fault does not
// meet a worker that lacks the current weights). It returns the status at
// which progress moved again.
func (f *faults) run(what, gone string, inject func()) status {
	f.t.Helper()
	f.t.Logf("fault: %s (progress %d)", what, f.best)
	inject()
	took := f.wait(what, 3*time.Minute, 3)
	resumed := f.last
	f.resumes = append(f.resumes, fmt.Sprintf("%-50s progress again after %v (leader %s)", what, took.Round(100*time.Millisecond), resumed.LeaderID))
	f.waitFor("two workers registered after: "+what, 3*time.Minute, func(s status) bool {
		for _, w := range s.Workers {
			if w.WorkerID == gone {
				return false
			}
		}
		return len(s.Workers) == 2
	})
	f.wait("after: "+what, 3*time.Minute, 3)
	return resumed
}
