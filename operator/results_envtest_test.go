package operator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/whorl-ml/whorl/internal/s3test"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
)

// resultFiles writes the result files the suite's jobs list: a report and
// a "checkpoint" of random bytes.
func resultFiles(t *testing.T) map[string]string {
	dir := t.TempDir()
	files := map[string]string{}
	for name, size := range map[string]int{"report.md": 300, "finetuned.safetensors": 3 << 20} {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	return files
}

// resultsExported waits for the WhorlJob's ResultsExported condition.
func resultsExported(wj *v1alpha1.WhorlJob) bool {
	return metaTrue(wj, v1alpha1.ConditionResultsExported)
}

// checkCopy checks a job's copy (checkFiles) and its condition and Event.
func (s *suite) checkCopy(wj *v1alpha1.WhorlJob, read func(name string) ([]byte, error)) {
	s.t.Helper()
	s.checkFiles(read)
	if c := findCondition(wj, v1alpha1.ConditionResultsExported); c == nil || c.Reason != reasonExported {
		s.t.Errorf("ResultsExported = %+v, want reason %s", c, reasonExported)
	}
	if !slices.Contains(s.events(wj.Name), "ResultsExported") {
		s.t.Errorf("events of %s: %v, want ResultsExported", wj.Name, s.events(wj.Name))
	}
}

// checkFiles compares a job's copied files, read by read, with the suite's
// result files and its SHA256SUMS with their digests.
func (s *suite) checkFiles(read func(name string) ([]byte, error)) {
	s.t.Helper()
	var want []string
	for name, path := range s.phases.files {
		b, err := os.ReadFile(path)
		if err != nil {
			s.t.Fatal(err)
		}
		got, err := read(name)
		if err != nil || !bytes.Equal(got, b) {
			s.t.Fatalf("copy of %s: %d bytes (%v), want the %d bytes the job wrote", name, len(got), err, len(b))
		}
		sum := sha256.Sum256(b)
		want = append(want, hex.EncodeToString(sum[:])+"  "+name)
	}
	sums, err := read(SumsFile)
	if err != nil {
		s.t.Fatalf("%s: %v", SumsFile, err)
	}
	for _, line := range want {
		if !strings.Contains(string(sums), line+"\n") {
			s.t.Errorf("%s lacks %q:\n%s", SumsFile, line, sums)
		}
	}
}

// setResults sets a WhorlJob's spec.results.url.
func (s *suite) setResults(name, url string) {
	s.t.Helper()
	wj, err := s.get(name)
	if err != nil {
		s.t.Fatal(err)
	}
	patch := crclient.MergeFrom(wj.DeepCopy())
	wj.Spec.Results = &v1alpha1.ResultsDestination{URL: url}
	if err := s.c.Patch(context.Background(), wj, patch); err != nil {
		s.t.Fatal(err)
	}
}

// TestWhorlJobResultsFolder: a WhorlJob whose destination cannot be
// reached waits queued, unsubmitted, naming it; pointed at a folder, it
// runs and its files are copied there, SHA256SUMS last. A copy that fails
// is retried, and the time to live waits for it.
func TestWhorlJobResultsFolder(t *testing.T) {
	s := startSuite(t)
	dst := t.TempDir()
	missing := filepath.Join(dst, "missing")
	wj := s.newJob("delivered")
	wj.Spec.Results = &v1alpha1.ResultsDestination{URL: "file://" + missing}
	s.create(wj)
	q := s.waitFor("delivered", "waits for its destination", func(wj *v1alpha1.WhorlJob) bool {
		return wj.Status.Phase == v1alpha1.PhaseQueued && strings.Contains(wj.Status.Message, "spec.results")
	})
	if q.Status.JobID != "" || !strings.Contains(q.Status.Message, missing) || s.replicas() != 0 {
		t.Fatalf("unreachable destination: job %q, message %q, workers %d; want no job, a message naming %s, no workers",
			q.Status.JobID, q.Status.Message, s.replicas(), missing)
	}
	s.setResults("delivered", "file://"+dst)
	s.waitFor("delivered", "runs", phaseIs(v1alpha1.PhaseBaseline))
	s.phases.release <- struct{}{}
	done := s.waitFor("delivered", "copies its results", resultsExported)
	folder := filepath.Join(dst, done.Status.JobID)
	if done.Status.ResultsURL != "file://"+folder+"/" {
		t.Errorf("resultsURL = %q, want file://%s/", done.Status.ResultsURL, folder)
	}
	s.checkCopy(done, readFolder(folder))

	// A second job whose copy fails (its destination turned into a file
	// while it ran) retries, and its time to live waits until the copy
	// succeeds once the folder is back.
	blocked := filepath.Join(t.TempDir(), "results")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	wj = s.newJob("retried")
	wj.Spec.Results = &v1alpha1.ResultsDestination{URL: "file://" + blocked}
	wj.Spec.TTLSecondsAfterFinished = ptr[int32](0)
	s.create(wj)
	running := s.waitFor("retried", "runs", phaseIs(v1alpha1.PhaseBaseline))
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocked, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.phases.release <- struct{}{}
	failing := s.waitFor("retried", "retries its copy", func(wj *v1alpha1.WhorlJob) bool {
		c := findCondition(wj, v1alpha1.ConditionResultsExported)
		return c != nil && c.Reason == reasonRetrying
	})
	if failing.Status.Phase != v1alpha1.PhaseSucceeded || !strings.Contains(findCondition(failing, v1alpha1.ConditionResultsExported).Message, blocked) {
		t.Fatalf("retrying: phase %s, condition %+v; want Succeeded and a message naming %s",
			failing.Status.Phase, findCondition(failing, v1alpha1.ConditionResultsExported), blocked)
	}
	time.Sleep(time.Second) // its time to live (0) has passed: it stays while the copy is to be done
	if _, err := s.get("retried"); err != nil {
		t.Fatalf("the WhorlJob went before its results were copied: %v", err)
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	s.waitGone("retried", 30*time.Second)
	s.checkFiles(readFolder(filepath.Join(blocked, running.Status.JobID)))
}

// waitGone waits until a WhorlJob is deleted.
func (s *suite) waitGone(name string, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := s.get(name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("WhorlJob %s is still there after %v", name, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readFolder reads a copy's files from a folder.
func readFolder(folder string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(folder, name)) }
}

// TestWhorlJobResultsS3 copies a job's files into a real S3-compatible
// server (SeaweedFS) and reads them back through the S3 API.
func TestWhorlJobResultsS3(t *testing.T) {
	srv := s3test.Start(t)
	url := srv.Bucket(t, "results", "whorljobs") // sets the AWS_* variables the operator reads
	s := startSuite(t)
	wj := s.newJob("to-s3")
	wj.Spec.Results = &v1alpha1.ResultsDestination{URL: url}
	s.create(wj)
	s.waitFor("to-s3", "runs", phaseIs(v1alpha1.PhaseBaseline))
	s.phases.release <- struct{}{}
	done := s.waitFor("to-s3", "copies its results", resultsExported)
	if want := "s3://results/whorljobs/" + done.Status.JobID + "/"; done.Status.ResultsURL != want {
		t.Errorf("resultsURL = %q, want %q (the endpoint parameters left out)", done.Status.ResultsURL, want)
	}
	s.checkCopy(done, func(name string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String("results"), Key: aws.String(fmt.Sprintf("whorljobs/%s/%s", done.Status.JobID, name)),
		})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	})
}
