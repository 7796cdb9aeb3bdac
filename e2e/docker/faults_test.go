package docker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestComposeFaults trains a job on the compose cluster (3 coordinators,
// 2 workers) through container faults, one at a time, and measures the
// time from each fault until committed progress moves again; committed
// progress must never go back, and the job must end with its report.
func TestComposeFaults(t *testing.T) {
	compose := requireDocker(t)
	if err := buildImage(); err != nil {
		t.Fatal(err)
	}
	p := startProject(t, compose, tinyJob(t, 16))
	f := &faults{p: p, t: t}
	f.wait("pretraining under way", 3*time.Minute, 20)
	workers := p.workers()
	checkMutualTLS(t, p, workers)
	f.run("docker kill of a worker", func() { must(t, "docker", "kill", workers[0]) },
		func() { must(t, "docker", "start", workers[0]) })
	f.stopWorker(workers[1])
	f.killLeader()
	f.run("docker pause of a worker for 15 s", func() { must(t, "docker", "pause", workers[0]) },
		func() { time.Sleep(max(0, 15*time.Second-f.last)); must(t, "docker", "unpause", workers[0]) })
	net := networkOf(t, workers[1])
	f.run("network disconnect of a worker", func() { must(t, "docker", "network", "disconnect", net, workers[1]) },
		func() { must(t, "docker", "network", "connect", net, workers[1]) })
	f.disconnectFollower(net)
	f.emptyVolume()
	code := f.waitExit(p.one("submit"), 3*time.Minute, 30*time.Minute)
	logs, _ := run(t, "docker", "logs", p.one("submit"))
	if code != "0" || !strings.Contains(logs, "report: ") || !strings.Contains(logs, `"gain"`) {
		t.Fatalf("submit exited %s without the report:\n%s", code, tail(logs, 20))
	}
	for _, r := range f.resumes {
		t.Log(r)
	}
}

// faults injects faults into a project and times the resumption.
type faults struct {
	p       *project
	t       *testing.T
	best    int           // highest committed progress seen
	last    time.Duration // the last fault's time to resume
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

// wait waits until pretraining committed steps more steps than now.
func (f *faults) wait(what string, d time.Duration, steps int) time.Duration {
	f.t.Helper()
	from := f.best
	_, took := f.p.waitFor(what, d, func(s status) bool {
		f.check(s)
		if s.Phase != "PHASE_PRETRAINING" && s.Phase != "PHASE_PENDING" {
			f.t.Fatalf("%s: the job is %s already; the faults need a longer pretraining", what, s.Phase)
		}
		return s.Phase == "PHASE_PRETRAINING" && s.progress() >= from+steps
	})
	return took
}

// run injects a fault, waits for progress to move again, then repairs it.
func (f *faults) run(what string, inject, repair func()) {
	f.t.Helper()
	f.t.Logf("fault: %s (progress %d)", what, f.best)
	inject()
	f.last = f.wait(what, 2*time.Minute, 3)
	f.resumes = append(f.resumes, fmt.Sprintf("%-45s progress again after %v", what, f.last.Round(100*time.Millisecond)))
	repair()
	// Both workers back in the job, then steps of that generation: until
	// then the one that missed steps lacks the current weights, and the
	// next fault could leave no one holding them (a rollback, rightly).
	f.p.waitFor("both workers registered after: "+what, 2*time.Minute, func(s status) bool {
		f.check(s)
		return len(s.Workers) == 2
	})
	f.wait("after repairing: "+what, 2*time.Minute, 3)
}

// stopWorker sends SIGTERM (docker stop): the worker must leave the ring
// and exit 0 within the grace period, not be killed.
func (f *faults) stopWorker(w string) {
	f.t.Helper()
	f.run("docker stop (SIGTERM) of a worker", func() {
		start := time.Now()
		must(f.t, "docker", "stop", "-t", "30", w)
		took := time.Since(start)
		code := must(f.t, "docker", "inspect", "--format", "{{.State.ExitCode}}", w)
		logs, _ := run(f.t, "docker", "logs", "--tail", "20", w)
		if code != "0" || took > 25*time.Second || !strings.Contains(logs, "left the job") {
			f.t.Errorf("docker stop of %s: exit %s after %v; want 0 well within the grace, having left the job:\n%s", w, code, took, logs)
		}
		f.resumes = append(f.resumes, fmt.Sprintf("%-45s exited 0 after %v", "  (the stopped worker)", took.Round(100*time.Millisecond)))
	}, func() { must(f.t, "docker", "start", w) })
}

// killLeader kills the raft leader's container and starts it again with
// its volume.
func (f *faults) killLeader() {
	f.t.Helper()
	s, err := f.p.status()
	if err != nil || s.LeaderID == "" {
		f.t.Fatalf("no leader known: %+v %v", s, err)
	}
	c := f.p.one(s.LeaderID)
	f.run("docker kill of the raft leader", func() { must(f.t, "docker", "kill", c) },
		func() { must(f.t, "docker", "start", c) })
}

// follower is a coordinator that is neither the leader nor
// whorl-coordinator-0 (which bootstraps the group).
func (f *faults) follower() string {
	f.t.Helper()
	s, err := f.p.status()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, id := range []string{"whorl-coordinator-1", "whorl-coordinator-2"} {
		if id != s.LeaderID {
			return id
		}
	}
	return ""
}

// disconnectFollower cuts a follower coordinator off the network and
// reconnects it with its aliases.
func (f *faults) disconnectFollower(net string) {
	f.t.Helper()
	id := f.follower()
	c := f.p.one(id)
	f.run("network disconnect of a follower coordinator", func() { must(f.t, "docker", "network", "disconnect", net, c) },
		func() {
			must(f.t, "docker", "network", "connect", "--alias", id, "--alias", id+".whorl-coordinator", "--alias", "whorl", net, c)
		})
}

// emptyVolume recreates a follower coordinator with an empty volume (a
// node that lost its disk): the group goes on, and the node rejoins.
func (f *faults) emptyVolume() {
	f.t.Helper()
	id := f.follower()
	f.run("a follower coordinator recreated empty", func() {
		f.p.compose1("rm", "-s", "-f", id)
		num := strings.TrimPrefix(id, "whorl-coordinator-")
		must(f.t, "docker", "volume", "rm", f.p.name+"_coordinator-"+num)
	}, func() {
		f.p.compose1("up", "-d", "--no-deps", id)
		c := f.p.one(id)
		deadline := time.Now().Add(time.Minute)
		for {
			// ready (SERVING) once it follows a leader again
			if _, err := run(f.t, "docker", "exec", c, "/whorl", "health", "--addr", id+":7401"); err == nil {
				return
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("%s recreated empty did not rejoin within a minute", id)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// networkOf is the compose network a container is on.
func networkOf(t *testing.T, c string) string {
	t.Helper()
	return must(t, "docker", "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", c)
}

// waitExit waits for a container to exit and returns its exit code. It
// fails when the job's status (phase, committed progress) stays the same
// for stall, or after limit in all: a slow machine is not a failure, a
// job that stopped moving is.
func (f *faults) waitExit(c string, stall, limit time.Duration) string {
	f.t.Helper()
	start, moved := time.Now(), time.Now()
	var last status
	for time.Since(start) < limit {
		if out, err := run(f.t, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c); err == nil {
			if state, code, _ := strings.Cut(out, " "); state == "exited" {
				return code
			}
		}
		if s, err := f.p.status(); err == nil {
			f.check(s)
			if s.Phase != last.Phase || s.progress() != last.progress() {
				last, moved = s, time.Now()
			}
		}
		if time.Since(moved) > stall {
			f.t.Fatalf("%s has not exited, and the job has not moved for %v (status %+v)", c, stall, last)
		}
		time.Sleep(2 * time.Second)
	}
	f.t.Fatalf("%s did not exit within %v (status %+v)", c, limit, last)
	return ""
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
