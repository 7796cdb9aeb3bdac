package k8snode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/whorl-ml/whorl/internal/s3test"
)

// resultsBucket and resultsPrefix are where the second WhorlJob's files go.
const resultsBucket, resultsPrefix = "results", "node"

// resultsServer is a real S3-compatible server (SeaweedFS) on the node's
// address, which the operator's pod reaches: spec.results' destination.
type resultsServer struct{ *s3test.Server }

// resultsStore starts the server on the node's address, with the bucket;
// nil without weed (a failure with WHORL_S3=require, as .ci/run sets).
func resultsStore(t *testing.T) *resultsServer {
	t.Helper()
	if s3test.Lookup() == "" {
		if os.Getenv("WHORL_S3") == "require" {
			t.Fatal(s3test.Missing + " (WHORL_S3=require)")
		}
		t.Logf("spec.results not tested: %s", s3test.Missing)
		return nil
	}
	srv := s3test.StartOn(t, nodeIP(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(resultsBucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", resultsBucket, err)
	}
	return &resultsServer{srv}
}

// nodeIP is the node's address (k8s/node/env.sh's node_ip).
func nodeIP(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "k8s", "node", "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^node_ip=([0-9.]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("k8s/node/env.sh: no node_ip=")
	}
	return string(m[1])
}

// secretGenerator is the kustomization's Secret whorl-results with the
// server's credentials, which the operator reads into its environment.
func (r *resultsServer) secretGenerator() string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf(`secretGenerator:
  - name: whorl-results
    namespace: %s
    literals:
      - AWS_ACCESS_KEY_ID=%s
      - AWS_SECRET_ACCESS_KEY=%s
      - AWS_REGION=%s
    options:
      disableNameSuffixHash: true
`, ns, r.AccessKey, r.SecretKey, s3test.Region)
}

// resultsSpec is the WhorlJob spec's "results" member (with a leading
// comma), or "" without a server.
func (r *resultsServer) resultsSpec() string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf(`,"results":{"url":%q}`, r.URL(resultsBucket, resultsPrefix))
}

// checkCopy waits for the WhorlJob's ResultsExported condition and
// compares every object of its copy with the file whorl fetch got into
// dir, and SHA256SUMS with the files.
func (r *resultsServer) checkCopy(t *testing.T, c *cluster, name, jobID, dir string) {
	t.Helper()
	if r == nil {
		return
	}
	start := time.Now()
	wj := c.waitCondition(t, name, "ResultsExported", 5*time.Minute)
	want := fmt.Sprintf("s3://%s/%s/%s/", resultsBucket, resultsPrefix, jobID)
	if wj.Status.ResultsURL != want {
		t.Errorf("%s: resultsURL %q, want %q", name, wj.Status.ResultsURL, want)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums := string(r.get(t, jobID, "SHA256SUMS"))
	var total int
	for _, f := range files {
		local, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.get(t, jobID, f.Name()); !bytes.Equal(got, local) {
			t.Errorf("%s in the bucket: %d bytes differ from whorl fetch's %d", f.Name(), len(got), len(local))
		}
		if !strings.Contains(sums, "  "+f.Name()+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", f.Name(), sums)
		}
		total += len(local)
	}
	t.Logf("spec.results: %d files (%d MiB) and SHA256SUMS in %s, equal to whorl fetch's (condition seen %v after Succeeded was)",
		len(files), total>>20, want, time.Since(start).Round(time.Second))
}

// get reads one object of the job's copy.
func (r *resultsServer) get(t *testing.T, jobID, name string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := resultsPrefix + "/" + jobID + "/" + name
	out, err := r.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(resultsBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", resultsBucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read s3://%s/%s: %v", resultsBucket, key, err)
	}
	return b
}

// waitCondition waits for a WhorlJob's condition to be True.
func (c *cluster) waitCondition(t *testing.T, name, typ string, d time.Duration) whorlJob {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		wj, err := c.whorlJob(name)
		if err == nil {
			for _, cond := range wj.Status.Conditions {
				if cond.Type == typ {
					if cond.Status == "True" {
						return wj
					}
					last = cond.Reason + ": " + cond.Message
				}
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("WhorlJob %s: condition %s not True within %v (%s)", name, typ, d, last)
	return whorlJob{}
}
