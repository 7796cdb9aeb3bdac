package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/bucket"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/s3test"
	"github.com/whorl-ml/whorl/shard"
	"github.com/whorl-ml/whorl/worker"
)

// TestPackedDataTrainsTheSameWeights pretrains one job from a class
// folder, from its packed shards by file:// and from the same shards in a
// real S3 server by s3://: the single-process loop ends with bit-identical
// weights and history from all three, and a 2-worker cluster whose workers
// read the images from S3 ends as the same cluster does from the folder.
func TestPackedDataTrainsTheSameWeights(t *testing.T) {
	srv := s3test.Start(t)
	dir := tinyDataDir(t, 3, 12)
	s3URL := srv.Bucket(t, "packed", "tiny")
	fileURL := "file://" + t.TempDir()
	for _, u := range []string{fileURL, s3URL} {
		b, err := bucket.Open(context.Background(), u, bucket.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		cfg := shard.DefaultPackConfig()
		cfg.ShardBytes = 8 << 10 // several shards
		if _, _, err := shard.Pack(context.Background(), dir, b, cfg); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	c := tinyJob(t, dir, 2)
	want, wantHist := localPretrain(t, c)
	for _, u := range []string{fileURL, s3URL} {
		c.Data.Dir = u
		got, hist := localPretrain(t, c)
		if d := maxDiff(want.Params(), got.Params()) + maxDiff(want.State(), got.State()); d != 0 {
			t.Errorf("%s: weights differ by %g from the folder's", u, d)
		}
		for e := range wantHist {
			if e >= len(hist) || hist[e].Loss != wantHist[e].Loss || hist[e].Accuracy != wantHist[e].Accuracy {
				t.Errorf("%s: history %+v, the folder's %+v", u, hist, wantHist)
				break
			}
		}
	}
	c.Data.Dir = dir
	folder, _ := pretrainOnCluster(t, c, "", 2)
	c.Data.Dir = s3URL
	packed, _ := pretrainOnCluster(t, c, "", 2)
	if d := maxDiff(folder.Params(), packed.Params()); d != 0 {
		t.Errorf("2 workers reading from S3: weights differ by %g from the folder's", d)
	}
}

// TestS3GoneMidTrainingStopsTheWorker: a worker streams a packed set from
// a real S3 server with a cache of a few images; the server is killed
// after the first steps. The worker gives up after its bounded retries
// and stops with an error naming the store's URL and the image, rather
// than rejoining forever.
func TestS3GoneMidTrainingStopsTheWorker(t *testing.T) {
	srv := s3test.Start(t)
	dir := tinyDataDir(t, 3, 100) // 30 steps an epoch: most images are fetched after the kill
	u := srv.Bucket(t, "gone", "tiny")
	b, err := bucket.Open(context.Background(), u, bucket.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := shard.Pack(context.Background(), dir, b, shard.DefaultPackConfig()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	c := tinyJob(t, dir, 2)
	c.Data.Dir = u
	lc, client := startCoordinators(t, 1)
	defer lc.Close()
	cfg := worker.DefaultConfig()
	cfg.ID, cfg.Coordinators, cfg.Listen, cfg.Threads = "w0", lc.Addrs(), "127.0.0.1:0", 1
	cfg.ImageCache, cfg.ReadAhead, cfg.Logger = worker.MinImageCache, 0, logger("w0")
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	submit(t, client, c)
	waitUntil(t, time.Minute, "a few steps", func() bool { return stepsDone(status(t, client)) >= 3 })
	srv.Kill()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "gone/tiny") || !strings.Contains(err.Error(), ".jpg") ||
			!errors.Is(err, shard.ErrStore) {
			t.Fatalf("worker stopped with %v: want the store's URL and an image named", err)
		}
		t.Logf("worker stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the worker kept going without its store")
	}
}

// TestSubmitRefusesUnreachableData: against a real S3 server, a job whose
// bucket does not exist, or whose credentials the server rejects, is
// refused at submit with the URL named; nothing trains.
func TestSubmitRefusesUnreachableData(t *testing.T) {
	srv := s3test.Start(t)
	u := srv.Bucket(t, "there", "x")
	_, cl := startCoordinators(t, 1)
	c := tinyJob(t, tinyDataDir(t, 2, 4), 1)
	for _, tc := range []struct{ name, url, secret string }{
		{"missing bucket", srv.URL("nosuchbucket", "x"), srv.SecretKey},
		{"rejected credentials", u, "wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
			c.Data.Dir = tc.url
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := cl.SubmitJob(ctx, c.JSON())
			if !errors.Is(err, client.ErrBadJob) || !strings.Contains(err.Error(), tc.url) {
				t.Fatalf("submit: %v, want ErrBadJob naming %s", err, tc.url)
			}
			t.Logf("refused: %v", err)
		})
	}
}
