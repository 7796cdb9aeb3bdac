package docker

import (
	"strings"
	"testing"
)

// checkMutualTLS checks, on a running compose project, that it runs on
// mutual TLS with one identity per container: a plaintext client is
// refused by the coordinators, a worker's certificate cannot register
// under another worker's id (the error names both identities), and the
// CA's key is in no running container (only the one-shot certs service
// mounts its volume).
func checkMutualTLS(t *testing.T, p *project, workers []string) {
	t.Helper()
	c0 := p.one("whorl-coordinator-0")
	out, err := run(t, "docker", "exec", c0, "/whorl", "status", "--coordinator", "whorl:7401", "--timeout", "3s",
		"--tls-cert=", "--tls-key=", "--tls-ca=")
	if err == nil {
		t.Errorf("a plaintext status call was answered:\n%s", out)
	} else {
		t.Logf("plaintext client: %s", tail(out, 1))
	}
	out, err = run(t, "docker", "exec", workers[0], "/whorl", "worker", "--id", "worker-1", "--coordinator", "whorl:7401")
	if err == nil || !strings.Contains(out, "spiffe://whorl/worker/worker-0") || !strings.Contains(out, "spiffe://whorl/worker/worker-1") {
		t.Errorf("worker-0's certificate starting as worker-1: %v\n%s", err, out)
	} else {
		t.Logf("worker-0 as worker-1: %s", tail(out, 1))
	}
	ca := p.name + "_ca"
	for _, svc := range append([]string{"whorl-coordinator-0", "whorl-coordinator-1", "whorl-coordinator-2", "submit"}, workerServices...) {
		for _, c := range p.containers(svc) {
			mounts := must(t, "docker", "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", c)
			if strings.Contains(" "+mounts+" ", " "+ca+" ") {
				t.Errorf("%s mounts the CA's volume %s: it could issue any identity", c, ca)
			}
			if !strings.Contains(mounts, "_tls-") {
				t.Errorf("%s mounts no identity volume (mounts: %s)", c, mounts)
			}
		}
	}
}
