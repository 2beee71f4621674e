package traindata_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/traindata"
)

// flipByte rewrites one byte of a file in place, keeping its name and size.
func flipByte(t *testing.T, name string, at func(size int) int) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[at(len(b))] ^= 0x01
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestContentHashChanged: a store records its images' content hash; after one image's bytes
// change (same name, same size) the trainer and a resumed precompute refuse it, naming
// deitkd.dataset.content_hash; a store without a content hash is accepted as before.
func TestContentHashChanged(t *testing.T) {
	ctx := context.Background()
	model := filepath.Join(testdata, "models", "tiny_gray.onnx")
	t.Run("folder", func(t *testing.T) {
		data := t.TempDir()
		testkit.CopyTree(t, filepath.Join(testdata, "images"), data, map[string]string{
			"png/rgb_40x30.png": "a/rgb.png", "png/gray_33x45.png": "b/gray.png",
		})
		labels := filepath.Join(t.TempDir(), "labels")
		o := precompute.Options{Model: model, Data: data, Out: labels, Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1}
		job, err := precompute.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if job.Metadata().Dataset.ContentHash == "" {
			t.Fatal("precompute recorded no content hash")
		}
		if _, err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		job.Close()
		if _, err := traindata.Open(ctx, traindata.Options{Labels: labels, Data: data}); err != nil {
			t.Fatalf("Open of the unchanged images: %v", err)
		}
		flipByte(t, filepath.Join(data, "b", "gray.png"), func(n int) int { return n / 2 })
		_, err = traindata.Open(ctx, traindata.Options{Labels: labels, Data: data})
		if !errors.Is(err, traindata.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.dataset.content_hash") ||
			!strings.Contains(err.Error(), "changed since") {
			t.Fatalf("Open after an image changed: %v, want a content_hash mismatch", err)
		}
		t.Log(err)
		_, err = precompute.New(o)
		if err == nil || !strings.Contains(err.Error(), "deitkd.dataset.content_hash") {
			t.Fatalf("precompute rerun after an image changed: %v, want a content_hash mismatch", err)
		}
		t.Log(err)
	})
	t.Run("idx", func(t *testing.T) {
		dir := t.TempDir()
		for _, n := range []string{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
			testkit.CopyTree(t, filepath.Join(testdata, "idx"), dir, map[string]string{n: n})
		}
		data := "idx:" + filepath.Join(dir, "t10k")
		labels := filepath.Join(t.TempDir(), "labels")
		job, err := precompute.New(precompute.Options{Model: model, Data: data, Out: labels, Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		job.Close()
		if _, err := traindata.Open(ctx, traindata.Options{Labels: labels, Data: data}); err != nil {
			t.Fatalf("Open of the unchanged images: %v", err)
		}
		// One pixel past the 16-byte header.
		flipByte(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), func(n int) int { return 16 + (n-16)/2 })
		_, err = traindata.Open(ctx, traindata.Options{Labels: labels, Data: data})
		if !errors.Is(err, traindata.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.dataset.content_hash") {
			t.Fatalf("Open after a pixel changed: %v, want a content_hash mismatch", err)
		}
	})
}
