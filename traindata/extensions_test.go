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

// TestExtensionsFromStore: the trainer lists a folder with the extensions its store was made
// with (precompute --extensions), so the GIFs such a store labelled are joined, and an eval
// folder without a store of its own is listed as the training store's was; a folder that no
// longer lists as the store records is refused, saying how it was listed.
func TestExtensionsFromStore(t *testing.T) {
	data := t.TempDir()
	testkit.CopyTree(t, filepath.Join(testdata, "images"), data, map[string]string{
		"png/rgb_40x30.png": "a/rgb.png", "other/paletted_39x27.gif": "a/paletted.gif",
		"jpeg/gray_37x21.jpg": "b/gray.jpg", "other/transparent_30x42.gif": "b/transparent.gif",
	})
	label := func(exts []string) string {
		dir := filepath.Join(t.TempDir(), "labels")
		job, err := precompute.New(precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: data, Out: dir,
			Extensions: exts, Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer job.Close()
		if _, err := job.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		exts []string
		n    int
	}{{"default", nil, 2}, {"gif", []string{".gif", ".png", ".jpg"}, 4}, {"all", []string{"*"}, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			labels := label(tc.exts)
			s, err := traindata.Open(ctx, traindata.Options{Labels: labels, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != tc.n {
				t.Fatalf("%d images joined, want %d", s.Len(), tc.n)
			}
			e, err := traindata.OpenEval(ctx, traindata.Options{Data: data}, s.Meta())
			if err != nil {
				t.Fatal(err)
			}
			if e.Len() != tc.n {
				t.Fatalf("eval set without a store: %d images, want %d as the training store lists", e.Len(), tc.n)
			}
		})
	}
	labels := label([]string{".gif", ".png", ".jpg"})
	if err := os.WriteFile(filepath.Join(data, "b", "late.gif"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := traindata.Open(ctx, traindata.Options{Labels: labels, Data: data})
	if !errors.Is(err, traindata.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.dataset.image_count") ||
		!strings.Contains(err.Error(), "files ending in .gif,.jpg,.png") {
		t.Fatalf("Open after a file was added: %v, want a count mismatch saying how the folder is listed", err)
	}
	t.Log(err)
}
