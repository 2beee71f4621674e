package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// TestViewsFromFlag: --views-from relabels a 3-view store with the ViT teacher, its rows'
// (image_id, view, crop, flip) are the source's, the manifest names the source under
// deitkd.views_from; a view flag beside it is a usage error naming the flag.
func TestViewsFromFlag(t *testing.T) {
	dir := t.TempDir()
	data := "idx:" + filepath.Join(testdata, "idx", "train")
	first, second := filepath.Join(dir, "gray"), filepath.Join(dir, "vit")
	if code, _, stderr := runInProcess(t, "--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", data, "--out", first,
		"--mean", "0.3", "--std", "0.3", "--views", "3", "--scale", "0.35,1", "--seed", "4", "--workers", "1", "--threads", "1"); code != exitOK {
		t.Fatalf("first store: exit %d: %s", code, stderr)
	}
	vit := filepath.Join(testdata, "teacher", "vit_fmnist.onnx")
	code, _, stderr := runInProcess(t, "--model", vit, "--data", data, "--out", filepath.Join(dir, "x"), "--views-from", first, "--views", "3", "--seed", "4")
	if code != exitUsage || !strings.Contains(stderr, "--seed, --views with --views-from") {
		t.Errorf("view flags beside --views-from: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runInProcess(t, "--model", vit, "--data", data, "--out", second, "--views-from", first, "--workers", "1", "--threads", "1"); code != exitOK {
		t.Fatalf("--views-from: exit %d: %s", code, stderr)
	}
	a, b := readRows(t, first), readRows(t, second)
	if len(a) != 15 || len(a) != len(b) {
		t.Fatalf("%d and %d rows, want 15 each", len(a), len(b))
	}
	for i := range a {
		if a[i].id != b[i].id || a[i].view != b[i].view || a[i].crop != b[i].crop || a[i].flip != b[i].flip {
			t.Fatalf("row %d: %+v, the source's %+v", i, b[i], a[i])
		}
	}
	r, err := store.OpenReader(second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.ViewsFrom == nil || !strings.HasSuffix(r.Meta.ViewsFrom.Path, "gray") || r.Meta.Views.Count != 3 || r.Meta.Views.Seed != 4 {
		t.Errorf("%s %+v, views %+v", schema.KeyViewsFrom, r.Meta.ViewsFrom, r.Meta.Views)
	}
}
