package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// photoFolder writes two classes of three small JPEGs and one bad file.
func photoFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range []string{"cats", "dogs"} {
		if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
			t.Fatal(err)
		}
		for k := range 3 {
			img := image.NewGray(image.Rect(0, 0, 36+k, 32))
			for i := range img.Pix {
				img.Pix[i] = uint8(i * (k + 1))
			}
			var b bytes.Buffer
			if err := jpeg.Encode(&b, img, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, c, string(rune('a'+k))+".jpg"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "dogs", "empty.png"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runWhorl runs the real command tree with args.
func runWhorl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err, _ := runWhorlFor(t, time.Hour, args...)
	return out, err
}

func TestDataInspectJSON(t *testing.T) {
	dir := photoFolder(t)
	manifest := filepath.Join(t.TempDir(), "split.json")
	out, err := runWhorl(t, "data", "inspect", "--data", dir, "--json", "--test-fraction", "0.34",
		"--labeled-fraction", "0.5", "--size", "8", "--write-manifest", manifest)
	if err != nil {
		t.Fatal(err, out)
	}
	var got struct {
		Classes map[string]int `json:"classes"`
		Images  int            `json:"images"`
		Skipped []struct {
			Path, Reason string
		} `json:"skipped"`
		Split         struct{ Train, Test, Labeled, Unlabeled int } `json:"split"`
		DecodeSeconds float64                                       `json:"decode_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err, out)
	}
	if got.Images != 6 || got.Classes["cats"] != 3 || got.Classes["dogs"] != 3 {
		t.Errorf("classes %v images %d", got.Classes, got.Images)
	}
	if len(got.Skipped) != 1 || got.Skipped[0].Path != "dogs/empty.png" || !strings.HasPrefix(got.Skipped[0].Reason, "empty file") {
		t.Errorf("skipped %+v", got.Skipped)
	}
	if s := got.Split; s.Train != 4 || s.Test != 2 || s.Labeled != 2 || s.Unlabeled != 2 || got.DecodeSeconds <= 0 {
		t.Errorf("split %+v decode %g", s, got.DecodeSeconds)
	}
	// The written manifest reproduces the split; a changed file fails.
	out, err = runWhorl(t, "data", "inspect", "--data", dir, "--size", "8", "--manifest", manifest)
	if err != nil || !strings.Contains(out, "train 4 (labeled 2, unlabeled 2), test 2") {
		t.Fatalf("--manifest: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "cats", "a.jpg"), []byte("new bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runWhorl(t, "data", "inspect", "--data", dir, "--size", "8", "--manifest", manifest)
	if err == nil || !strings.Contains(err.Error(), "cats/a.jpg") {
		t.Fatalf("--manifest with a changed file: %v", err)
	}
}

func TestDataInspectText(t *testing.T) {
	out, err := runWhorl(t, "data", "inspect", "--data", photoFolder(t), "--size", "8", "--test-fraction", "0.34")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, want := range []string{"2 classes", "cats", "dogs/empty.png: empty file", "split (seed 1): train 4", "decode: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDataInspectErrors(t *testing.T) {
	dir := photoFolder(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"--data", dir, "--strict"}, "dogs/empty.png"},
		{[]string{"--data", dir, "--test-per-class", "3"}, "class cats has 3 images"},
		{[]string{"--labeled-fraction", "0"}, "accepted range"},
		{[]string{"--size", "2"}, "accepted range"},
	} {
		out, err := runWhorl(t, append([]string{"data", "inspect"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want mention of %q (output %s)", tc.args, err, tc.want, out)
		}
	}
}
