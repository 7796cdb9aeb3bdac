package bucket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/whorl-ml/whorl/internal/s3test"
	"github.com/whorl-ml/whorl/shard"
)

// TestS3PackLoadVerify packs into a real S3 server, loads by s3:// URL
// exactly what the folder loads, verifies, then damages one shard through
// the S3 API: verify names it and loading skips that image.
func TestS3PackLoadVerify(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	u := srv.Bucket(t, "packed", "flowers/v1")
	src := testFolder(t)
	b, err := Open(ctx, u, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := shard.DefaultPackConfig()
	cfg.ShardBytes = 4 << 10
	x, _, err := shard.Pack(ctx, src, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc := shard.DefaultLoadConfig()
	lc.Size, lc.Dir = 16, src
	want, _, err := shard.Load(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	lc.Dir = u
	got, _, err := shard.Load(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Len() {
		if got.Items[i] != want.Items[i] || !bytes.Equal(got.Image(i), want.Image(i)) {
			t.Fatalf("image %d differs from the folder's", i)
		}
	}
	if rep, err := shard.VerifyPack(ctx, b); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	victim := x.Images[1]
	name := x.Shards[victim.Shard].Name
	data, err := b.ReadRange(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	data[victim.Offset+victim.Size/2] ^= 1
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("packed"),
		Key: aws.String("flowers/v1/" + name), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	rep, err := shard.VerifyPack(ctx, b)
	if err != nil || len(rep.Problems) != 2 || rep.Problems[0].Path != victim.Path || rep.Problems[0].Shard != name {
		t.Fatalf("damaged shard: %+v %v", rep, err)
	}
	_, lrep, err := shard.Load(ctx, lc)
	if err != nil || len(lrep.Skipped) != 1 || lrep.Skipped[0].Path != victim.Path {
		t.Fatalf("load of a damaged shard: %+v %v", lrep, err)
	}
}

// TestS3RefusesBadCredentialsAndMissingBucket: both are refused at Open,
// at once (not retried), naming the URL.
func TestS3RefusesBadCredentialsAndMissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	u := srv.Bucket(t, "exists", "")
	slow := Options{Attempts: 5, Backoff: 2 * time.Second, MaxBackoff: 2 * time.Second}
	missing := srv.URL("nosuchbucket", "")
	start := time.Now()
	if _, err := Open(ctx, missing, slow); !errors.Is(err, shard.ErrStore) || !strings.Contains(err.Error(), missing) ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := Open(ctx, u, slow); !errors.Is(err, shard.ErrStore) || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "(1 attempt)") {
		t.Errorf("wrong secret: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusals took %v: retried what cannot pass", took)
	}
}

// TestS3CreateMakesTheBucket: Options.Create (what `whorl data pack`
// opens its --out with) makes a missing bucket, which then opens without
// it; opening with Create again finds the bucket there; without Create a
// missing bucket is still refused.
func TestS3CreateMakesTheBucket(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	ctx := context.Background()
	create := DefaultOptions()
	create.Create = true
	u := srv.URL("made-by-pack", "sets/a")
	for i := range 2 {
		b, err := Open(ctx, u, create)
		if err != nil {
			t.Fatalf("open %d with Create: %v", i, err)
		}
		b.Close()
	}
	b, err := Open(ctx, u, DefaultOptions())
	if err != nil {
		t.Fatalf("open after Create: %v", err)
	}
	b.Close()
	if _, err := Open(ctx, srv.URL("still-missing", ""), DefaultOptions()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket without Create: %v", err)
	}
}

// TestS3RetriesThenNamesTheStore: a proxy in front of the server answers
// 503 to the first requests; a read passes through them. With the server
// killed, a read gives up after its attempts, naming the URL and range.
func TestS3RetriesThenNamesTheStore(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	srv.Bucket(t, "flaky", "")
	target, _ := url.Parse(srv.Endpoint)
	var failures atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && failures.Add(-1) >= 0 {
			http.Error(w, "slow down", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	u := "s3://flaky?endpoint=" + proxy.URL + "&use_path_style=true&region=" + s3test.Region
	opts := Options{Attempts: 4, Backoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AttemptTimeout: 5 * time.Second}
	b, err := Open(ctx, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, _ := b.Create(ctx, "obj")
	io.WriteString(w, "0123456789")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	failures.Store(5) // more than the SDK's own three attempts: whorl's retry must carry it
	got, err := b.ReadRange(ctx, "obj", 2, 5)
	if err != nil || string(got) != "23456" {
		t.Fatalf("read through 503s: %q %v", got, err)
	}
	srv.Kill()
	start := time.Now()
	_, err = b.ReadRange(ctx, "obj", 2, 5)
	if !errors.Is(err, shard.ErrStore) || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "obj bytes [2, 7)") ||
		!strings.Contains(err.Error(), "(4 attempts)") {
		t.Fatalf("server gone: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("giving up took %v", took)
	}
}
