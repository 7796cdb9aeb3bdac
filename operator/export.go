package operator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/bucket"
	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// SumsFile is the object written last into a job's results folder:
// sha256sum's format, one line per file, so `sha256sum -c SUMS` checks a
// copy, and its presence says the copy is complete.
const SumsFile = "SHA256SUMS"

// errPermanent marks an export failure that a retry cannot mend (the
// coordinators no longer hold the job's files, the destination's URL is
// unusable).
var errPermanent = errors.New("export cannot succeed")

// ResultsStore is a results destination as the exporter writes it;
// *bucket.Bucket is one.
type ResultsStore interface {
	PutFile(ctx context.Context, name, path string) error
	PutBytes(ctx context.Context, name string, data []byte) error
	ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error)
	Close() error
}

// OpenResults opens a results destination by URL.
type OpenResults func(ctx context.Context, rawURL string, check bool) (ResultsStore, error)

// openBucket opens a destination with the bucket package: a check is one
// quick attempt (is the folder there, may the operator reach it), a copy
// retries as reads do and gives each file up to half an hour.
func openBucket(ctx context.Context, rawURL string, check bool) (ResultsStore, error) {
	o := bucket.DefaultOptions()
	o.AttemptTimeout = 30 * time.Minute
	if check {
		o.Attempts, o.AttemptTimeout = 1, 15*time.Second
	}
	b, err := bucket.Open(ctx, rawURL, o)
	if errors.Is(err, bucket.ErrConfig) {
		return nil, fmt.Errorf("%w: %w", errPermanent, err)
	}
	return b, err
}

// resultsFolder is where job id's files go under a destination URL, as the
// status shows it: the URL without its parameters (which may carry an
// endpoint, never a secret: credentials come from the environment).
func resultsFolder(rawURL, id string) string {
	base := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		u.RawQuery, u.Fragment = "", ""
		base = u.String()
	}
	return strings.TrimSuffix(base, "/") + "/" + id + "/"
}

// exports runs the copies of succeeded jobs' files to their destinations,
// each in a goroutine owned by the manager (exports is a Runnable: Start
// gives the copies their context and waits for them when it ends).
// Reconcile starts a copy and reads its outcome; the WhorlJob's condition
// ResultsExported is the record, so an operator that restarts mid-copy
// copies again (finding a complete earlier copy by its SumsFile).
type exports struct {
	scratch string
	open    OpenResults
	now     func() time.Time

	mu   sync.Mutex
	ctx  context.Context // the manager's; nil until Start
	wg   sync.WaitGroup
	runs map[string]*exportRun // by job id
}

// exportRun is one copy of a job's files.
type exportRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	// files and err are the outcome, set before done closes; ended is when.
	files int
	err   error
	ended time.Time
}

// Start gives the copies the manager's context and, when it ends, waits
// for them to stop.
func (e *exports) Start(ctx context.Context) error {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	<-ctx.Done()
	e.wg.Wait()
	return nil
}

// NeedLeaderElection says copies run on the elected operator only.
func (e *exports) NeedLeaderElection() bool { return true }

// run returns the job's copy, if one was started and not forgotten.
func (e *exports) run(id string) *exportRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[id]
}

// begin starts copying job id's files from cl to rawURL.
func (e *exports) begin(id, rawURL string, cl Coordinator) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		return errors.New("the operator's exporter has not started yet")
	}
	if e.runs == nil {
		e.runs = map[string]*exportRun{}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	run := &exportRun{cancel: cancel, done: make(chan struct{})}
	e.runs[id] = run
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		run.files, run.err = e.copy(ctx, cl, id, rawURL)
		run.ended = e.now()
		close(run.done)
	}()
	return nil
}

// forget stops job id's copy, if one runs, and drops it.
func (e *exports) forget(id string) {
	e.mu.Lock()
	run := e.runs[id]
	delete(e.runs, id)
	e.mu.Unlock()
	if run != nil {
		run.cancel()
	}
}

// copy puts every result file of job id into rawURL's folder <id>/, then
// the SumsFile; a folder whose SumsFile already lists them is complete.
func (e *exports) copy(ctx context.Context, cl Coordinator, id, rawURL string) (int, error) {
	res, err := cl.FetchResults(ctx, id)
	if errors.Is(err, client.ErrNoJob) {
		return 0, fmt.Errorf("%w: the coordinators no longer hold job %s's files (more than --keep-jobs jobs ran since)", errPermanent, id)
	}
	if err != nil {
		return 0, fmt.Errorf("list job %s's files: %w", id, err)
	}
	arts := res.GetArtifacts()
	if len(arts) == 0 {
		return 0, fmt.Errorf("%w: job %s lists no result files (its leader wrote none: no --out?)", errPermanent, id)
	}
	if err := client.CheckArtifacts(arts); err != nil {
		return 0, fmt.Errorf("%w: %w", errPermanent, err)
	}
	dst, err := e.open(ctx, rawURL, false)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	sums := sumsFile(arts)
	if have, err := dst.ReadRange(ctx, id+"/"+SumsFile, 0, -1); err == nil && bytes.Equal(have, sums) {
		return len(arts), nil
	}
	dir, err := os.MkdirTemp(e.scratch, "export-")
	if err != nil {
		return 0, fmt.Errorf("export job %s: scratch folder: %w", id, err)
	}
	defer os.RemoveAll(dir)
	for _, a := range arts {
		if err := putArtifact(ctx, cl, dst, dir, id, a); err != nil {
			return 0, err
		}
	}
	return len(arts), dst.PutBytes(ctx, id+"/"+SumsFile, sums)
}

// putArtifact downloads one file into dir (checked against its digest and
// size) and puts it into the destination.
func putArtifact(ctx context.Context, cl Coordinator, dst ResultsStore, dir, id string, a *pb.Artifact) error {
	if _, err := cl.DownloadArtifact(ctx, dir, a); err != nil {
		return fmt.Errorf("export job %s: %w", id, err)
	}
	path := filepath.Join(dir, a.GetName())
	defer os.Remove(path)
	return dst.PutFile(ctx, id+"/"+a.GetName(), path)
}

// sumsFile is the SumsFile of a job's files.
func sumsFile(arts []*pb.Artifact) []byte {
	var b bytes.Buffer
	for _, a := range arts {
		fmt.Fprintf(&b, "%s  %s\n", a.GetDigest(), a.GetName())
	}
	return b.Bytes()
}
