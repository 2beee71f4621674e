package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/precompute"
)

// TestShow: labels show writes the sheet and the tensors for a real store, refuses images that
// are not the store's (exit 1, naming the field), and takes --rows A-B or A only (exit 2).
func TestShow(t *testing.T) {
	idx := "idx:" + filepath.Join("..", "..", "testdata", "idx", "train")
	dir := filepath.Join(t.TempDir(), "labels")
	job, err := precompute.New(precompute.Options{Model: filepath.Join("..", "..", "testdata", "models", "tiny_gray.onnx"), Data: idx, Out: dir,
		Mean: []float64{0.286}, Std: []float64{0.353}, Workers: 1, Threads: 1, Views: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	png, tensors := filepath.Join(out, "sheet.png"), filepath.Join(out, "t")
	code, stdout, stderr := runArgs("show", dir, "--data", idx, "--rows", "1-4", "--out", png, "--tensors", tensors)
	if code != 0 || !strings.Contains(stdout, "wrote "+png+": rows 1-4, 28×28 views") || !strings.Contains(stdout, "float32 4×1×28×28") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{png, filepath.Join(tensors, "inputs.npy"), filepath.Join(tensors, "rows.csv")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if code, _, stderr := runArgs("show", dir, "--data", "idx:"+filepath.Join("..", "..", "testdata", "idx", "t10k"), "--rows", "0", "--out", png); code != 1 || !strings.Contains(stderr, "deitkd.dataset") {
		t.Errorf("other images: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runArgs("show", dir, "--data", idx, "--rows", "8-12", "--out", png); code != 1 || !strings.Contains(stderr, "has rows 0-9") {
		t.Errorf("rows beyond the store: exit %d\n%s", code, stderr)
	}
	for _, bad := range [][]string{{"--rows", "4-2", "--out", png}, {"--rows", "x", "--out", png}, {"--rows", "1-2"}, {"--out", png}} {
		if code, _, stderr := runArgs(append([]string{"show", dir, "--data", idx}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", bad, code, stderr)
		}
	}
}
