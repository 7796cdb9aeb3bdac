package bucket

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// PutFile copies the local file path into the object name, retrying as
// reads are. The object appears whole or not at all: its Content-MD5,
// taken from the file first, is checked by the store (S3, GCS) or by
// gocloud as it writes, so a file changed or a body damaged on the way
// fails the attempt instead of landing.
func (b *Bucket) PutFile(ctx context.Context, name, path string) error {
	sum, size, err := fileMD5(path)
	if err != nil {
		return fmt.Errorf("put %s into %s: %w", path, b.url, err)
	}
	return b.retry(ctx, fmt.Sprintf("put %s (%d bytes)", name, size), func(ctx context.Context) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return b.write(ctx, name, f, sum)
	})
}

// PutBytes writes data as the object name, retried and checked as
// PutFile is.
func (b *Bucket) PutBytes(ctx context.Context, name string, data []byte) error {
	sum := md5.Sum(data)
	return b.retry(ctx, fmt.Sprintf("put %s (%d bytes)", name, len(data)), func(ctx context.Context) error {
		return b.write(ctx, name, bytes.NewReader(data), sum[:])
	})
}

// write is one attempt of a put: the object is discarded unless every
// byte of r was written and Close took it.
func (b *Bucket) write(ctx context.Context, name string, r io.Reader, sum []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before Close, this discards a partial object
	w, err := b.b.NewWriter(ctx, name, &blob.WriterOptions{ContentType: contentType(name), ContentMD5: sum})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		return errors.Join(err, w.Close())
	}
	return w.Close()
}

// IsNotFound reports whether err is a store's answer that the object is
// not there.
func IsNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// fileMD5 returns a file's MD5 and size.
func fileMD5(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), n, nil
}
