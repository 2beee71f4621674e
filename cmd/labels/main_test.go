package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

func meta(images int64) schema.Metadata {
	return schema.Metadata{
		SchemaVersion: schema.VersionPlain,
		Teacher:       schema.Teacher{File: "t.onnx", SHA256: strings.Repeat("1", 64), InputName: "x", InputShape: []int64{-1, 1, 28, 28}, OutputName: "y"},
		NumClasses:    10,
		ClassNames:    []string{"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
		Preprocess:    dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.5}, Std: []float64{0.5}, Channels: 1},
		Views:         schema.Views{Count: 2, Seed: 1, Scale: [2]float64{0.5, 1}, Ratio: [2]float64{0.75, 1.333}, FlipP: 0.5},
		Store:         schema.StoreConfig{Mode: schema.ModeTopK, K: 5, DType: schema.Float16},
		Dataset:       schema.Dataset{Name: "test", ImageCount: images, IDHash: strings.Repeat("2", 64)},
		CreatedBy:     "labels test",
	}
}

// write makes a store whose teacher is right on images with an even index.
func write(t *testing.T, dir string, md schema.Metadata, spec store.ShardSpec) {
	t.Helper()
	w, err := store.OpenWriter(dir, md, store.Options{ShardRows: 10, Shard: spec})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < md.Dataset.ImageCount; i++ {
		if !w.Owns(i) {
			continue
		}
		rng := rand.New(rand.NewPCG(1, uint64(i)))
		label := int32(i % 10)
		for v := int32(0); v < 2; v++ {
			logits := make([]float32, 10)
			for c := range logits {
				logits[c] = float32(rng.NormFloat64())
			}
			peak := label
			if i%2 == 1 {
				peak = (label + 1) % 10
			}
			logits[peak] += 10
			r := store.Row{ImageIndex: i, ImageID: fmt.Sprintf("train/%08d", i), Label: label, View: v, Crop: [4]float32{0, 0, 1, 1}, Logits: logits}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func runArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, meta(20), store.ShardSpec{})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"inspect", []string{"inspect", dir}, 0, []string{"topk (k=5), float16, 10 classes", "top-1 vs ground truth  50.00% of 40 labelled rows", "topk_logit", "deitkd.store", "Trouser"}},
		{"verify", []string{"verify", dir}, 0, []string{"ok: ", "40 rows, 20 images"}},
		{"export-csv", []string{"export", dir, "--format", "csv", "-n", "2"}, 0, []string{"image_id,image_index,label,view,crop,flip,teacher_hard,topk_index,topk_logit,logsumexp\ntrain/00000000,0,0,0,"}},
		{"export-jsonl", []string{"export", "--format", "jsonl", dir}, 0, []string{`{"image_id":"train/00000019","image_index":19,"label":9,"view":1,`}},
		{"usage", []string{"inspect"}, 2, nil},
		{"unknown", []string{"frobnicate", dir}, 2, nil},
		{"bad-format", []string{"export", dir, "--format", "xml"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVerifyFails(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, meta(20), store.ShardSpec{})
	p := filepath.Join(dir, "part-00001.parquet")
	fi, _ := os.Stat(p)
	os.Truncate(p, fi.Size()-10)
	code, _, errs := runArgs("verify", dir)
	if code != 1 || !strings.Contains(errs, p) {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	md := meta(15)
	for i := 0; i < 3; i++ {
		write(t, dir, md, store.ShardSpec{Index: i, Count: 3})
	}
	if code, out, errs := runArgs("merge", dir); code != 0 || !strings.Contains(out, "30 rows, 15 images") {
		t.Fatalf("merge: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runArgs("verify", dir); code != 0 {
		t.Fatalf("verify after merge: exit %d\n%s%s", code, out, errs)
	}
}

// TestUsageAndMissing: a bad flag value is a usage error (exit 2, saying
// what is accepted), and a store that is not there is exit 1 saying so.
func TestUsageAndMissing(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, meta(20), store.ShardSpec{})
	missing := filepath.Join(t.TempDir(), "no-such-store")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"export-format-xml", []string{"export", dir, "--format", "xml"}, 2, []string{`"xml"`, "csv or jsonl"}},
		{"export-format-empty", []string{"export", "--format", "", dir}, 2, []string{"csv or jsonl"}},
		{"merge-missing", []string{"merge", missing}, 1, []string{missing, "no such folder"}},
		{"merge-file", []string{"merge", filepath.Join(dir, "manifest.json")}, 1, []string{filepath.Join(dir, "manifest.json"), "not a folder"}},
		{"inspect-missing", []string{"inspect", missing}, 1, []string{missing, "no such folder or manifest"}},
		{"verify-missing", []string{"verify", missing}, 1, []string{missing, "no such folder or manifest"}},
		{"export-missing", []string{"export", missing}, 1, []string{missing, "no such folder or manifest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

// TestDamagedArrowShard damages an Arrow shard so that decoding it
// panics inside arrow-go (a flatbuffers offset out of range): every command
// must exit 1 with a message that names the shard and says it is damaged,
// not a bare "runtime error: slice bounds out of range".
func TestDamagedArrowShard(t *testing.T) {
	dir := t.TempDir()
	md := meta(20)
	w, err := store.OpenWriter(dir, md, store.Options{ShardRows: 10, Format: store.FormatArrow})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 20; i++ {
		for v := int32(0); v < 2; v++ {
			if err := w.Write(store.Row{ImageIndex: i, ImageID: fmt.Sprintf("train/%08d", i), Label: int32(i % 10), View: v, Logits: make([]float32, 10)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "part-00001.arrow")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// An Arrow IPC file ends in its footer (a flatbuffer), the footer's
	// length (int32) and "ARROW1"; the footer begins with the offset of its
	// root table, which now points far outside it.
	footer := len(b) - 10 - int(binary.LittleEndian.Uint32(b[len(b)-10:]))
	binary.LittleEndian.PutUint32(b[footer:], 0x7fff0000)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", dir}, "damaged Arrow IPC file"},
		{[]string{"export", dir}, "damaged Arrow IPC file"},
		{[]string{"verify", dir}, "checksum mismatch"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			code, _, errs := runArgs(tc.args...)
			if code != 1 || !strings.Contains(errs, p) || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 naming %s and saying %q", code, errs, p, tc.want)
			}
			t.Log(strings.TrimSpace(errs))
		})
	}
}

// TestVerifyScope: verify checks a store against the scope it was written
// for and says so; --complete asks for the whole dataset; a corrupt shard
// is reported alone, without a count of "missing" images that are only
// unreadable.
func TestVerifyScope(t *testing.T) {
	limited := t.TempDir()
	md := meta(20)
	w, err := store.OpenWriter(limited, md, store.Options{ShardRows: 10, Limit: 12})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 12; i++ {
		for v := int32(0); v < 2; v++ {
			r := store.Row{ImageIndex: i, ImageID: fmt.Sprintf("train/%08d", i), Label: int32(i % 10), View: v, Crop: [4]float32{0, 0, 1, 1}, Logits: make([]float32, 10)}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	write(t, corrupt, meta(20), store.ShardSpec{})
	p := filepath.Join(corrupt, "part-00001.parquet")
	testkit.FlipByte(t, p)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   string // in stdout (code 0) or stderr
		absent string // in neither
	}{
		{"limit", []string{"verify", limited}, 0, "scope: limit 12 of 20 images", ""},
		{"limit complete", []string{"verify", "--complete", limited}, 1, "8 of 20 image indices in scope (all 20 images)", ""},
		{"corrupt shard", []string{"verify", corrupt}, 1, "checksum mismatch", "neither stored nor in the failure log"},
		{"corrupt shard count", []string{"verify", corrupt}, 1, ": 1 problem(s)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			got := stderr
			if code == 0 {
				got = stdout
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("output %q, want %q", got, tc.want)
			}
			if tc.absent != "" && strings.Contains(stdout+stderr, tc.absent) {
				t.Errorf("output %q names %q", stdout+stderr, tc.absent)
			}
		})
	}
}
