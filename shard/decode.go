package shard

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"strings"
)

// Kinds of bad image, the first word(s) of a BadImageError and of a
// Skipped.Reason.
const (
	KindEmpty       = "empty file"
	KindNotImage    = "not an image"
	KindUnsupported = "unsupported format"
	KindTruncated   = "truncated"
	KindTooLarge    = "too large"
	KindUndecodable = "undecodable"
	KindUnreadable  = "unreadable"
	KindChanged     = "changed"
)

// BadImageError says why an image file cannot be used. It matches
// ErrBadImage with errors.Is.
type BadImageError struct {
	// Kind is one of the Kind constants.
	Kind string
	// Err is the underlying cause.
	Err error
}

// Error returns "kind: cause".
func (e *BadImageError) Error() string { return e.Kind + ": " + e.Err.Error() }

// Unwrap returns ErrBadImage and the cause.
func (e *BadImageError) Unwrap() []error { return []error{ErrBadImage, e.Err} }

func badImage(kind string, err error) error { return &BadImageError{Kind: kind, Err: err} }

// Decode decodes a JPEG or PNG file and returns its centred square resized
// to size x size as HWC RGB bytes. Images whose header declares more than
// maxPixels pixels are refused before decoding. Errors are *BadImageError.
func Decode(data []byte, size, maxPixels int) ([]uint8, error) {
	dst := make([]uint8, size*size*3)
	if _, err := decodeInto(dst, data, size, maxPixels); err != nil {
		return nil, err
	}
	return dst, nil
}

// decodeInto is Decode writing into dst (len size*size*3).
func decodeInto(dst []uint8, data []byte, size, maxPixels int) (short int, err error) {
	img, err := decodeImage(data, maxPixels)
	if err != nil {
		return 0, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	s := min(w, h)
	x0, y0 := float64(w-s)/2, float64(h-s)/2
	if m, ok := img.(*image.YCbCr); ok {
		resampleYCbCr(dst, m, x0, y0, float64(s), size)
		return s, nil
	}
	fx, fy := math.Floor(x0), math.Floor(y0)
	region := image.Rect(int(fx), int(fy), int(math.Ceil(x0+float64(s))), int(math.Ceil(y0+float64(s)))).
		Add(b.Min)
	rgb := toRGB(img, region)
	tx := axisTaps(region.Dx(), x0-fx, float64(s), size)
	ty := axisTaps(region.Dy(), y0-fy, float64(s), size)
	resampleRGB(dst, rgb, region.Dx(), region.Dy(), tx, ty)
	return s, nil
}

// decodeImage checks the header (format, dimensions, pixel limit) and then
// decodes the whole image.
func decodeImage(data []byte, maxPixels int) (image.Image, error) {
	if len(data) == 0 {
		return nil, badImage(KindEmpty, errors.New("zero bytes"))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil && errors.Is(err, image.ErrFormat) {
		if f := sniffOther(data); f != "" {
			return nil, badImage(KindUnsupported, fmt.Errorf("%s (only JPEG and PNG)", f))
		}
	}
	if err != nil {
		return nil, classify(err, KindNotImage)
	}
	if format != "jpeg" && format != "png" {
		return nil, badImage(KindUnsupported, fmt.Errorf("%s (only JPEG and PNG)", format))
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		return nil, badImage(KindUndecodable, fmt.Errorf("header declares %dx%d pixels", cfg.Width, cfg.Height))
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > int64(maxPixels) {
		return nil, badImage(KindTooLarge, fmt.Errorf("header declares %dx%d = %d pixels, limit %d",
			cfg.Width, cfg.Height, px, maxPixels))
	}
	var img image.Image
	if format == "jpeg" {
		img, err = jpeg.Decode(bytes.NewReader(data))
	} else {
		img, err = png.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, classify(err, KindUndecodable)
	}
	return img, nil
}

// sniffOther names other common image formats by their magic bytes.
func sniffOther(data []byte) string {
	s := string(data[:min(len(data), 12)])
	switch {
	case strings.HasPrefix(s, "GIF8"):
		return "gif"
	case strings.HasPrefix(s, "BM"):
		return "bmp"
	case strings.HasPrefix(s, "RIFF") && len(s) == 12 && s[8:] == "WEBP":
		return "webp"
	case strings.HasPrefix(s, "II*\x00") || strings.HasPrefix(s, "MM\x00*"):
		return "tiff"
	}
	return ""
}

// classify maps a decoder error to a BadImageError of the right kind.
func classify(err error, fallback string) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF),
		strings.Contains(err.Error(), "not enough pixel data"):
		return badImage(KindTruncated, err)
	case errors.Is(err, image.ErrFormat):
		return badImage(KindNotImage, errors.New("unknown format (not JPEG or PNG)"))
	}
	return badImage(fallback, err)
}
