package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/store"
)

// TestFailures: inspect shows the failure count and the first ten with their reasons,
// `labels failures` lists them all by image index, and `labels export STORE/failures` says
// where they are. Images 8..19 fail, so classes 9 is never predicted: the histogram says so
// instead of listing it with 0 rows.
func TestFailures(t *testing.T) {
	dir := t.TempDir()
	md := meta(20)
	w, err := store.OpenWriter(dir, md, store.Options{ShardRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(19); i >= 8; i-- { // out of order: the listing sorts them
		if err := w.Fail(store.Failure{ImageIndex: i, ImageID: fmt.Sprintf("train/%08d", i), Stage: "decode", Err: fmt.Sprintf("bad pixels %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(0); i < 8; i++ {
		for v := int32(0); v < 2; v++ {
			logits := make([]float32, 10)
			logits[(i+int64(v))%10] = 5
			r := store.Row{ImageIndex: i, ImageID: fmt.Sprintf("train/%08d", i), Label: int32(i), View: v, Crop: [4]float32{0, 0, 1, 1}, Logits: logits}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		want, not []string
		lines     int // output lines, when > 0
	}{
		{"inspect", []string{"inspect", dir}, 0, []string{
			"16 rows, 8 images, 12 failed",
			"failed images (12; labels failures " + dir + " lists them all)",
			"       8 train/00000008: decode: bad pixels 8\n",
			"      17 train/00000017: decode: bad pixels 17\n  ... 2 more\n",
			"1 of 10 classes never predicted",
		}, []string{"train/00000018", "    9 Ankle boot"}, 0},
		{"jsonl", []string{"failures", dir}, 0, []string{
			`{"image_index":8,"image_id":"train/00000008","stage":"decode","error":"bad pixels 8"}` + "\n",
			`{"image_index":19,`,
		}, nil, 12},
		{"csv", []string{"failures", "--format", "csv", dir, "-n", "2"}, 0, []string{
			"image_index,image_id,stage,error\n8,train/00000008,decode,bad pixels 8\n9,train/00000009,decode,bad pixels 9\n",
		}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runArgs(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%s", s, out)
				}
			}
			if n := strings.Count(out, "\n"); tt.lines > 0 && n != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tt.lines, out)
			}
		})
	}
	t.Run("export of the failure folder", func(t *testing.T) {
		code, _, errs := runArgs("export", filepath.Join(dir, "failures"))
		if code != 1 || !strings.Contains(errs, "labels failures "+dir) {
			t.Fatalf("exit %d, %q: want 1 pointing at labels failures", code, errs)
		}
	})
}
