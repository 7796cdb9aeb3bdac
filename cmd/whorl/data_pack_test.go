package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataPackVerifyInspect packs a photo folder into a file:// URL with
// small shards, verifies it, inspects it by URL as it inspects the folder,
// then damages a shard: verify names it and fails.
func TestDataPackVerifyInspect(t *testing.T) {
	src := photoFolder(t)
	out := filepath.Join(t.TempDir(), "packed")
	url := "file://" + out
	got, err := runWhorl(t, "data", "pack", "--src", src, "--out", url, "--shard-size", "2KiB")
	if err != nil || !strings.Contains(got, "packed 7 images") || !strings.Contains(got, "at "+url) {
		t.Fatalf("pack: %v\n%s", err, got)
	}
	if got, err := runWhorl(t, "data", "verify", url); err != nil || !strings.Contains(got, "0 problems") {
		t.Fatalf("verify: %v\n%s", err, got)
	}
	inspectSame(t, src, url, "6 images in 2 classes", "empty.png", "train")
	shards, _ := filepath.Glob(filepath.Join(out, "shard-*.tar"))
	if len(shards) < 2 {
		t.Fatalf("shards %v: want several of 2 KiB", shards)
	}
	b, _ := os.ReadFile(shards[1])
	b[700] ^= 0xff
	if err := os.WriteFile(shards[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = runWhorl(t, "data", "verify", url)
	if err == nil || !strings.Contains(got, filepath.Base(shards[1])) || !strings.Contains(err.Error(), "damaged packed dataset") {
		t.Fatalf("verify of a damaged shard: %v\n%s", err, got)
	}
}

// TestDataPackEmbedded packs the embedded set (what a container, which has
// no photo folder, fills a bucket with) and inspects it by URL as the
// embedded set itself: the same photos, classes and split. --embedded and
// --src are one choice, one of them required.
func TestDataPackEmbedded(t *testing.T) {
	url := "file://" + filepath.Join(t.TempDir(), "packed")
	got, err := runWhorl(t, "data", "pack", "--embedded", "--out", url, "--shard-size", "2MiB")
	if err != nil || !strings.Contains(got, "packed 3480 images") || !strings.Contains(got, "into 6 shards at "+url) {
		t.Fatalf("pack --embedded: %v\n%s", err, got)
	}
	inspectSame(t, "", url, "3480 images in 5 classes", "dandelion               888",
		"split (seed 1): train 2784 (labeled 279, unlabeled 2505), test 696")
	for _, args := range [][]string{{"--out", url}, {"--embedded", "--src", t.TempDir(), "--out", url}} {
		if got, err := runWhorl(t, append([]string{"data", "pack"}, args...)...); err == nil || !strings.Contains(err.Error()+got, "[src embedded]") {
			t.Errorf("pack %v: %v\n%s, want the flags' group named", args, err, got)
		}
	}
}

// inspectSame runs `whorl data inspect` on data a ("" = the embedded set)
// and on b, and wants every one of wants in both outputs.
func inspectSame(t *testing.T, a, b string, wants ...string) {
	t.Helper()
	var outs [2]string
	for k, data := range []string{a, b} {
		args := []string{"data", "inspect", "--size", "8"}
		if data != "" {
			args = append(args, "--data", data)
		}
		out, err := runWhorl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		outs[k] = out
	}
	for _, want := range wants {
		if !strings.Contains(outs[0], want) || !strings.Contains(outs[1], want) {
			t.Errorf("inspect lacks %q:\n%s:\n%s\n%s:\n%s", want, a, outs[0], b, outs[1])
		}
	}
}
