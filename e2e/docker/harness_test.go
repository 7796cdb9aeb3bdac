package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// image is the tag the suite builds.
const image = "whorl:e2e"

// root is the repository root (this package is e2e/docker).
var root, _ = filepath.Abs(filepath.Join("..", ".."))

// requireDocker skips (or, with WHORL_E2E_DOCKER=require, fails) unless a
// Docker engine answers and a compose command exists; it returns the
// compose command.
func requireDocker(t *testing.T) []string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("WHORL_E2E_DOCKER") == "require" {
			t.Fatalf("docker suite: %s, and WHORL_E2E_DOCKER=require", what)
		}
		t.Skipf("docker suite: %s (set WHORL_E2E_DOCKER=require to make this a failure)", what)
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		missing(fmt.Sprintf("no Docker engine answers (docker version: %v: %s)", err, bytes.TrimSpace(out)))
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	missing("neither docker-compose nor docker compose is installed")
	return nil
}

// buildImage runs `make image` once per test process.
var buildImage = sync.OnceValue(func() error {
	cmd := exec.Command("make", "-C", root, "image", "IMAGE="+image)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("make image: %w\n%s", err, out)
	}
	return nil
})

// run runs a command and returns its trimmed combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// must is run failing the test on error.
func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// project is one compose project started for a test and removed after it.
type project struct {
	t        *testing.T
	name     string
	compose  []string
	env      []string
	profiles []string // compose profiles enabled for every command
}

// workerServices are the compose file's workers, each its own identity.
var workerServices = []string{"worker-0", "worker-1"}

// startProject brings the compose cluster up (its certificates, three
// coordinators, the workers of workerServices) with the job file job;
// everything it made is removed at cleanup.
func startProject(t *testing.T, compose []string, job string) *project {
	t.Helper()
	return startProfiles(t, compose, []string{"WHORL_JOB=" + job}, nil)
}

// startProfiles brings the compose cluster up with the profiles enabled,
// the variables env set, and upArgs after `up -d`.
func startProfiles(t *testing.T, compose, env, profiles []string, upArgs ...string) *project {
	t.Helper()
	p := &project{t: t, name: fmt.Sprintf("whorle2e%d", os.Getpid()), compose: compose,
		env: append(append(os.Environ(), "WHORL_IMAGE="+image), env...), profiles: profiles}
	t.Cleanup(p.remove)
	p.compose1(append([]string{"up", "-d"}, upArgs...)...)
	return p
}

// base is the compose command's arguments before a subcommand.
func (p *project) base() []string {
	out := append(append([]string{}, p.compose[1:]...), "-p", p.name, "-f", filepath.Join(root, "docker-compose.yaml"))
	for _, pr := range p.profiles {
		out = append(out, "--profile", pr)
	}
	return out
}

// workers are the project's worker containers, one per service.
func (p *project) workers() []string {
	p.t.Helper()
	var cs []string
	for _, svc := range workerServices {
		cs = append(cs, p.one(svc))
	}
	return cs
}

// compose1 runs a compose subcommand of the project.
func (p *project) compose1(args ...string) string {
	p.t.Helper()
	full := append(p.base(), args...)
	cmd := exec.Command(p.compose[0], full...)
	cmd.Env, cmd.Dir = p.env, root
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", p.compose[0], strings.Join(full, " "), err, out)
	}
	return string(out)
}

// remove deletes the project's containers, network and volumes (also
// after a failure), logging the submit's and coordinators' tails when the
// test failed.
func (p *project) remove() {
	if p.t.Failed() {
		for _, svc := range append([]string{"certs", "submit", "whorl-coordinator-0", "whorl-s3", "s3-pack", "s3-submit"}, workerServices...) {
			for _, c := range p.containers(svc) {
				out, _ := exec.Command("docker", "logs", "--tail", "30", c).CombinedOutput()
				p.t.Logf("--- %s:\n%s", c, out)
			}
		}
	}
	full := append(p.base(), "down", "-v", "--remove-orphans", "-t", "5")
	cmd := exec.Command(p.compose[0], full...)
	cmd.Env, cmd.Dir = p.env, root
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Logf("compose down: %v\n%s", err, out)
	}
}

// containers lists the project's containers of a service (running or not).
func (p *project) containers(service string) []string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+p.name,
		"--filter", "label=com.docker.compose.service="+service, "--format", "{{.Names}}").Output()
	if err != nil {
		return nil
	}
	names := strings.Fields(string(out))
	return names
}

// one is the only container of a service.
func (p *project) one(service string) string {
	p.t.Helper()
	cs := p.containers(service)
	if len(cs) != 1 {
		p.t.Fatalf("service %s has containers %v, want one", service, cs)
	}
	return cs[0]
}

// status is the job status as JSON fields, as the raft leader sees it,
// asked through any running coordinator (a killed one is skipped; an
// answer that names no leader, which only `whorl status --stale` gives, too).
type status struct {
	Phase      string `json:"phase"`
	Epoch      int    `json:"epoch"`
	NextStep   int    `json:"nextStep"`
	TotalSteps int    `json:"totalSteps"`
	Generation string `json:"generation"`
	LeaderID   string `json:"leaderId"`
	Workers    []struct {
		WorkerID string `json:"workerId"`
	} `json:"workers"`
	Coordinators []json.RawMessage `json:"coordinators"`
}

func (p *project) status() (status, error) {
	var last error
	for i := range 3 {
		for _, c := range p.containers(fmt.Sprintf("whorl-coordinator-%d", i)) {
			out, err := exec.Command("docker", "exec", c, "/whorl", "status", "--json", "--coordinator", "whorl:7401",
				"--timeout", "5s").Output()
			if err != nil {
				last = err
				continue
			}
			var s status
			if err := json.Unmarshal(out, &s); err != nil {
				last = err
				continue
			}
			if s.LeaderID == "" { // a node's own applied state, which may lag: not the job's
				last = fmt.Errorf("%s knows no leader", c)
				continue
			}
			return s, nil
		}
	}
	return status{}, fmt.Errorf("no coordinator answered: %v", last)
}

// progress is a monotonic measure of committed pretraining work.
func (s status) progress() int { return s.Epoch*10000 + s.NextStep }

// waitFor polls the status until ok or the deadline, failing the test then.
func (p *project) waitFor(what string, d time.Duration, ok func(status) bool) (status, time.Duration) {
	p.t.Helper()
	start := time.Now()
	var s status
	var err error
	for time.Since(start) < d {
		if s, err = p.status(); err == nil && ok(s) {
			return s, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.t.Fatalf("%s: not within %v (last status %+v, %v)", what, d, s, err)
	return s, 0
}
