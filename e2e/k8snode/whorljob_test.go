package k8snode

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWhorlJobsOnNode runs WhorlJobs through the operator on the node:
//
//	what                                    how
//	the operator runs with its Role only    Deployment whorl-operator rolls out (the other
//	                                        pods have no token)
//	a WhorlJob trains to the end through    first: a worker pod and then the raft leader's pod
//	a worker's and the leader's pod         deleted mid-pretraining; phase Succeeded with a
//	deletion                                gain; Events LeaderChanged and WorkerLost
//	kubectl get whorljobs shows progress    the table while first trains: Pretraining, epoch
//	                                        k/12, a progress between 0% and 100%
//	a second WhorlJob waits, then runs      second is Queued while first runs and Succeeds after
//	whorl fetch returns its files           from the leader's pod IP: every file
//	                                        verified; finetuned.safetensors of a ResNet-18 (at
//	                                        32 px, fine-tuned without pretraining: a ResNet
//	                                        pretraining is too slow for 2 cores) loads strictly
//	                                        into torchvision (rotnet.py load)
//	spec.results copies them to a bucket    second's results go to a real S3 server (SeaweedFS)
//	                                        on the node's address, with the operator's
//	                                        credentials from the Secret whorl-results; every
//	                                        object equals whorl fetch's file, SHA256SUMS lists
//	                                        them (skipped without weed; WHORL_S3=require fails)
//	deleting a running WhorlJob cancels it  third deleted while it trains: the coordinators'
//	                                        job fails "cancelled by ..."
//	the workers go to zero when idle        the worker Deployment's replicas end at 0
func TestWhorlJobsOnNode(t *testing.T) {
	c := requireNode(t)
	start := time.Now()
	c.mustWait(3*time.Minute, "wait", "--for=condition=Ready", "node", "--all")
	c.reset()
	if os.Getenv("WHORL_K8S_NODE") != "start" {
		t.Cleanup(c.reset)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dump()
			out, _ := c.run("-n", ns, "logs", "deployment/whorl-operator", "--tail=30")
			t.Logf("--- operator log (tail)\n%s", out)
		}
	})
	store := resultsStore(t) // spec.results' destination, nil without weed
	c.must("apply", "-k", operatorOverlay(t, store))
	c.mustWait(5*time.Minute, "-n", ns, "rollout", "status", "deployment/whorl-operator")
	c.mustWait(5*time.Minute, "-n", ns, "rollout", "status", "statefulset/whorl-coordinator")
	t.Logf("coordinators and operator ready %v after apply", time.Since(start).Round(time.Second))

	c.applyJob(t, "first", `{"preset":"quick","job":{"seed":1,"data":{"image_size":16},"pretrain":{"epochs":12},"supervised":{"epochs":2}},"workers":{"min":2,"max":2}}`)
	time.Sleep(1100 * time.Millisecond) // creation order is to the second
	c.applyJob(t, "second", `{"preset":"quick","job":{"seed":2,"model":{"name":"resnet18","stem":"small"},"pretrain":{"epochs":0},"supervised":{"epochs":1},"eval":{"linear_probes":false,"knn":false,"probe_folds":0,"knn_k":0,"knn_temperature":0}},"workers":{"min":2,"max":2}`+
		store.resultsSpec()+`}`)

	f := &faults{c: c, t: t}
	f.wait("first pretrains", 5*time.Minute, 10)
	table := c.progressTable(t, "first", "second")
	t.Logf("kubectl get whorljobs while first trains:\n%s", table)
	f.podDeletions() // the 2 workers the operator scaled to
	first := c.waitWhorlJob(t, "first", "Succeeded", 20*time.Minute)
	if first.Status.Result.Gain == "" {
		t.Errorf("first: no gain in its result: %+v", first.Status)
	}
	t.Logf("first: %s", first.Status.Message)
	events := c.must("-n", ns, "get", "events", "--field-selector", "involvedObject.name=first", "-o", "jsonpath={.items[*].reason}")
	for _, reason := range []string{"Submitted", "Pretraining", "LeaderChanged", "WorkerLost", "Succeeded"} {
		if !strings.Contains(" "+events+" ", " "+reason+" ") {
			t.Errorf("first's events %q lack %s", events, reason)
		}
	}
	for _, r := range f.resumes {
		t.Log(r)
	}

	second := c.waitWhorlJob(t, "second", "Succeeded", 20*time.Minute)
	if second.Status.StartTime == nil || first.Status.CompletionTime == nil || second.Status.StartTime.Before(first.Status.CompletionTime.Add(-time.Second)) {
		t.Errorf("second started %v, before first ended %v", second.Status.StartTime, first.Status.CompletionTime)
	}
	dir := c.fetch(t, second.Status.JobID)
	loadInTorchvision(t, filepath.Join(dir, "finetuned.safetensors"), "resnet18-small")
	store.checkCopy(t, c, "second", second.Status.JobID, dir)

	c.applyJob(t, "third", `{"preset":"quick","job":{"seed":3,"data":{"image_size":16},"pretrain":{"epochs":50}},"workers":{"min":2,"max":2}}`)
	third := c.waitWhorlJob(t, "third", "Pretraining", 5*time.Minute)
	c.must("-n", ns, "delete", "whorljob", "third", "--timeout=2m")
	s, err := c.status()
	if err != nil || s.JobID != third.Status.JobID || s.Phase != "PHASE_FAILED" || !strings.HasPrefix(s.FailureReason, "cancelled by") {
		t.Errorf("after deleting third: coordinators' job %s %s (%q), %v; want %s failed: cancelled by ...", s.JobID, s.Phase, s.FailureReason, err, third.Status.JobID)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for c.must("-n", ns, "get", "deployment", "whorl-worker", "-o", "jsonpath={.spec.replicas}") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the worker Deployment was not scaled to 0 with the queue empty")
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("three WhorlJobs done %v after apply", time.Since(start).Round(time.Second))
}

// operatorOverlay is k8s/overlays/node without the submit Job (the
// WhorlJobs submit), with no workers until a WhorlJob scales them, 2 GiB
// for each coordinator, and the Secret whorl-results with store's
// credentials (when there is a store).
func operatorOverlay(t *testing.T, store *resultsServer) string {
	t.Helper()
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, "k8s", "overlays", "node"))
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
replicas:
  - name: whorl-worker
    count: 0
patches:
  # second fine-tunes a ResNet-18: the leader's phases need more than the
  # overlay's 1 GiB (the coordinators refuse the job at submit otherwise).
  - target:
      kind: StatefulSet
      name: whorl-coordinator
    patch: |
      - op: replace
        path: /spec/template/spec/containers/0/resources/limits/memory
        value: 2Gi
  - patch: |
      $patch: delete
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: whorl-submit
`, base) + store.secretGenerator()
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// whorlJob is the part of a WhorlJob the suite reads.
type whorlJob struct {
	Status struct {
		Phase          string `json:"phase"`
		Message        string `json:"message"`
		JobID          string `json:"jobID"`
		EpochProgress  string `json:"epochProgress"`
		Progress       string `json:"progress"`
		StartTime      *time.Time
		CompletionTime *time.Time
		Result         struct {
			Baseline, FineTuned, Gain string
		} `json:"result"`
		ResultsURL string `json:"resultsURL"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

// applyJob creates a WhorlJob from its spec's JSON.
func (c *cluster) applyJob(t *testing.T, name, spec string) {
	t.Helper()
	doc := fmt.Sprintf(`{"apiVersion":"whorl-ml.github.io/v1alpha1","kind":"WhorlJob","metadata":{"name":%q,"namespace":%q},"spec":%s}`, name, ns, spec)
	path := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("create", "-f", path)
}

// whorlJob reads a WhorlJob.
func (c *cluster) whorlJob(name string) (whorlJob, error) {
	var wj whorlJob
	out, err := c.run("-n", ns, "get", "whorljob", name, "-o", "json")
	if err != nil {
		return wj, err
	}
	return wj, json.Unmarshal([]byte(out), &wj)
}

// waitWhorlJob waits for a WhorlJob's phase, failing on Failed or Cancelled.
func (c *cluster) waitWhorlJob(t *testing.T, name, phase string, d time.Duration) whorlJob {
	t.Helper()
	deadline := time.Now().Add(d)
	var wj whorlJob
	var err error
	for time.Now().Before(deadline) {
		if wj, err = c.whorlJob(name); err == nil {
			switch wj.Status.Phase {
			case phase:
				return wj
			case "Failed", "Cancelled":
				t.Fatalf("WhorlJob %s: %s: %s", name, wj.Status.Phase, wj.Status.Message)
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("WhorlJob %s: not %s within %v (phase %s: %s; %v)", name, phase, d, wj.Status.Phase, wj.Status.Message, err)
	return wj
}

// progressTable waits for `kubectl get whorljobs` to show the running job
// pretraining with progress and the queued one waiting, and returns the
// table.
func (c *cluster) progressTable(t *testing.T, running, queued string) string {
	t.Helper()
	row := regexp.MustCompile(`(?m)^` + running + `\s+Pretraining\s+\d+/12\s+(\d+)%`)
	wait := regexp.MustCompile(`(?m)^` + queued + `\s+Queued\s`)
	var out string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		out = c.must("-n", ns, "get", "whorljobs")
		if m := row.FindStringSubmatch(out); m != nil && m[1] != "0" && m[1] != "100" && wait.MatchString(out) {
			return out
		}
	}
	t.Fatalf("kubectl get whorljobs never showed %s pretraining with progress and %s queued:\n%s", running, queued, out)
	return ""
}

// fetch downloads a job's files with `whorl fetch` from the raft leader's
// pod, reached at its pod IP (the node is this machine: the pods' bridge is
// routed here), and returns the folder. The leader answers FetchResults
// itself, so no leader address (a cluster DNS name) needs resolving here.
func (c *cluster) fetch(t *testing.T, jobID string) string {
	t.Helper()
	s, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	ip := strings.TrimSpace(c.must("-n", ns, "get", "pod", s.LeaderID, "-o", "jsonpath={.status.podIP}"))
	dir := t.TempDir()
	out, err := exec.Command(whorlBinary(t), "fetch", "--coordinator", ip+":7401", "--job", jobID, "--out", dir, "--timeout", "2m").CombinedOutput()
	if err != nil {
		t.Fatalf("whorl fetch from %s (%s): %v\n%s", s.LeaderID, ip, err, out)
	}
	t.Logf("whorl fetch --job %s from %s:\n%s", jobID, s.LeaderID, tail(string(out), 20))
	return dir
}

// whorlBinary builds the whorl binary of this tree (make build).
func whorlBinary(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("make", "-C", root, "build").CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return filepath.Join(root, "bin", "whorl")
}

// loadInTorchvision loads a checkpoint strictly into torchvision's network
// with the reference's loader (rotnet.py load), skipping without PyTorch
// unless WHORL_TORCH=require.
func loadInTorchvision(t *testing.T, path, model string) {
	t.Helper()
	const py = "/usr/bin/python3"
	ref := os.Getenv("WHORL_ROTNET")
	if ref == "" {
		ref = filepath.Join(root, "..", "shared", "reference", "rotnet.py")
	}
	missing := func(what string) {
		if os.Getenv("WHORL_TORCH") == "require" {
			t.Fatalf("torchvision check: %s, and WHORL_TORCH=require", what)
		}
		t.Logf("torchvision check skipped: %s (apt-get install python3-torch python3-torchvision)", what)
	}
	if _, err := os.Stat(ref); err != nil {
		missing("no rotnet.py at " + ref)
		return
	}
	if err := exec.Command(py, "-c", "import torch, torchvision").Run(); err != nil {
		missing(py + " cannot import torch and torchvision")
		return
	}
	out, err := exec.Command(py, ref, "load", model, path).CombinedOutput()
	if err != nil {
		t.Fatalf("rotnet.py load %s %s (strict, torchvision's names): %v\n%s", model, path, err, out)
	}
	t.Logf("torchvision %s loaded %s strictly: %s", model, filepath.Base(path), strings.TrimSpace(string(out)))
}
