package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/gcsblob"  // gs://

	"github.com/whorl-ml/whorl/internal/validate"
	"github.com/whorl-ml/whorl/shard"
)

// Schemes are the URL schemes this package opens.
var Schemes = []string{"file", "s3", "gs"}

func init() {
	for _, s := range Schemes {
		shard.RegisterStore(s, func(ctx context.Context, u string) (shard.Store, error) {
			return Open(ctx, u, DefaultOptions())
		})
	}
}

// ErrConfig marks invalid Options or an unusable URL.
var ErrConfig = errors.New("invalid bucket configuration")

// errNoBucket is a store's answer that the bucket is not there (not
// retried).
var errNoBucket = errors.New("the bucket does not exist")

// Options set how a Bucket is opened and how its reads are retried.
type Options struct {
	// Create makes a missing local folder (file://) or S3 bucket instead
	// of refusing it (what a packer writing a new data set wants); a
	// gs:// bucket must exist.
	Create bool
	// Attempts is how many times a read is tried (1 = no retry).
	Attempts int
	// Backoff is the wait before the first retry; it doubles up to
	// MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt (0: none beyond the caller's).
	AttemptTimeout time.Duration
}

// DefaultOptions tries a read 5 times over about 3 s of backoff, each
// attempt within 60 s.
func DefaultOptions() Options {
	return Options{Attempts: 5, Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second, AttemptTimeout: time.Minute}
}

// Validate names the first field out of bounds.
func (o Options) Validate() error {
	p := validate.New(ErrConfig, "bucket.Options.")
	validate.InRange(p, "Attempts", o.Attempts, 1, 100)
	validate.InRange(p, "Backoff", o.Backoff, 0, time.Minute)
	validate.InRange(p, "MaxBackoff", o.MaxBackoff, o.Backoff, 10*time.Minute)
	validate.InRange(p, "AttemptTimeout", o.AttemptTimeout, 0, time.Hour)
	return p.Err()
}

// Bucket is a shard.Store over a gocloud blob.Bucket.
type Bucket struct {
	b    *blob.Bucket
	url  string
	opts Options
}

// Open opens the store rawURL names (see the package comment), refusing a
// missing bucket or denied credentials with the URL named.
func Open(ctx context.Context, rawURL string, opts Options) (*Bucket, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b, mk, err := openBlob(ctx, rawURL, opts.Create)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", shard.ErrStore, rawURL, err)
	}
	bk := &Bucket{b: b, url: rawURL, opts: opts}
	err = bk.check(ctx)
	if errors.Is(err, errNoBucket) && mk != nil {
		if err = bk.retry(ctx, "create bucket", mk); err == nil {
			err = bk.check(ctx)
		}
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return bk, nil
}

// check asks the store whether the bucket is there and may be read.
func (b *Bucket) check(ctx context.Context) error {
	return b.retry(ctx, "check", func(ctx context.Context) error {
		ok, err := b.b.IsAccessible(ctx)
		if err == nil && !ok {
			err = errNoBucket
		}
		return err
	})
}

// openBlob opens the gocloud bucket of a whorl URL, under its prefix;
// with create, mk makes a missing S3 bucket (nil for other schemes, and
// without create).
func openBlob(ctx context.Context, raw string, create bool) (b *blob.Bucket, mk func(context.Context) error, err error) {
	g, err := gocloudURL(raw, create)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(g)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrConfig, raw, err)
	}
	if u.Scheme != "s3" {
		b, err = blob.OpenBucket(ctx, g)
		return b, nil, err
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	b, mk, err = openS3(ctx, u)
	if !create {
		mk = nil
	}
	if err != nil || prefix == "" {
		return b, mk, err
	}
	return blob.PrefixedBucket(b, prefix), mk, nil
}

// gocloudURL turns whorl's URL form (the path after the bucket is a
// prefix) into gocloud's (?prefix=...), and keeps a folder free of
// gocloud's metadata side files.
func gocloudURL(raw string, create bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrConfig, raw, err)
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%w: %s: a file URL names a local folder (file:///abs/path), not host %q", ErrConfig, raw, u.Host)
		}
		q.Set("metadata", "skip")
		q.Set("no_tmp_dir", "true") // temporary files beside the final ones: one file system, an atomic rename
		if create {
			q.Set("create_dir", "true")
		}
	case "s3", "gs":
		if u.Host == "" {
			return "", fmt.Errorf("%w: %s: no bucket name after %s://", ErrConfig, raw, u.Scheme)
		}
		if p := strings.Trim(u.Path, "/"); p != "" {
			q.Set("prefix", p+"/")
		}
		u.Path = ""
	default:
		return "", fmt.Errorf("%w: %s: scheme %q is not one of %v", ErrConfig, raw, u.Scheme, Schemes)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// URL is the URL the bucket was opened with.
func (b *Bucket) URL() string { return b.url }

// Close releases the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

// ReadRange reads n bytes of name from off (n < 0: to the end), retrying.
func (b *Bucket) ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	var out []byte
	what := fmt.Sprintf("read %s bytes [%d, %d)", name, off, off+n)
	if n < 0 {
		what = fmt.Sprintf("read %s from byte %d", name, off)
	}
	err := b.retry(ctx, what, func(ctx context.Context) error {
		r, err := b.b.NewRangeReader(ctx, name, off, n, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		if out, err = io.ReadAll(r); err != nil {
			return err
		}
		if n >= 0 && int64(len(out)) != n {
			return fmt.Errorf("%w: %d bytes, not %d (the object is shorter)", io.ErrUnexpectedEOF, len(out), n)
		}
		return nil
	})
	return out, err
}

// Open streams a whole object (the first byte retried; a stream broken
// later fails its Read).
func (b *Bucket) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	var r *blob.Reader
	err := b.retry(ctx, "open "+name, func(_ context.Context) error {
		var err error
		r, err = b.b.NewReader(ctx, name, nil) // the caller's ctx: the stream outlives the attempt
		return err
	})
	return r, err
}

// Create writes an object, which appears whole when Close returns nil;
// cancelling ctx before Close discards it.
func (b *Bucket) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	w, err := b.b.NewWriter(ctx, name, &blob.WriterOptions{ContentType: contentType(name)})
	if err != nil {
		return nil, fmt.Errorf("%w: create %s in %s: %w", shard.ErrStore, name, b.url, err)
	}
	return w, nil
}

// contentType is an object's MIME type by its name.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".tar"):
		return "application/x-tar"
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}
