package traindata_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/traindata"
)

// TestDamagedStore: the trainer refuses a store whose bytes changed after it was written
// (checksums are checked when it opens), and values the writer never stores even where the
// checksum was made to match (a foreign or hand-edited file): a non-finite logit, a crop
// outside the image, a teacher class outside [0, K). Each error names the shard and the row.
// The store is Arrow IPC, uncompressed, so a value's bytes can be found and replaced.
func TestDamagedStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "labels")
	o := precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: idxSpec("train"), Out: dir,
		Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1, Views: 2, Seed: 7, Scale: [2]float64{0.35, 1}, Format: store.FormatArrow}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	job.Close()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	shard := r.ShardPath(0)
	// Row 1 (image 0, view 1): a random box, so its values are unlikely to repeat elsewhere.
	var logit float32
	var box []float32
	var hard []int32
	err = r.ScanShard(context.Background(), 0, []string{schema.ColTeacherLogits, schema.ColCrop, schema.ColTeacherHard}, func(rec arrow.RecordBatch) error {
		if logit == 0 {
			logit = rec.Column(0).(*array.FixedSizeList).ListValues().(*array.Float32).Value(1*10 + 3)
			box = append([]float32(nil), rec.Column(1).(*array.FixedSizeList).ListValues().(*array.Float32).Float32Values()[4:8]...)
			hard = append([]int32(nil), rec.Column(2).(*array.Int32).Int32Values()[:16]...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f32 := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	i32s := func(v []int32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		}
		return b
	}
	badHard := append([]int32{1073741830}, hard[1:]...)
	tests := []struct {
		name     string
		old, new []byte
		resum    bool // write the damaged file's sha256 into the manifest
		want     error
		says     string
	}{
		{"flipped byte", f32(logit), f32(logit * 1.5), false, store.ErrChecksum, "sha256"},
		{"NaN logit", f32(logit), f32(float32(math.NaN())), true, store.ErrContent, "row 1: teacher_logits[3] is NaN"},
		{"crop past the image", f32(box...), f32(box[0], box[1], 1.0019, box[3]), true, store.ErrContent, "row 1 (train/00000000): crop"},
		{"teacher class out of range", i32s(hard), i32s(badHard), true, store.ErrContent, "row 0: teacher_hard 1073741830 outside 0..9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := filepath.Join(t.TempDir(), "labels")
			copyDir(t, dir, cp)
			p := filepath.Join(cp, filepath.Base(shard))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b, tt.old); n != 1 {
				t.Fatalf("value bytes found %d times in the shard, want once", n)
			}
			b = bytes.Replace(b, tt.old, tt.new, 1)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.resum {
				resum(t, cp, filepath.Base(shard), b)
			}
			_, err = traindata.Open(context.Background(), traindata.Options{Labels: cp, Data: idxSpec("train")})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Open: %v\nwant %v naming %s and %q", err, tt.want, p, tt.says)
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			copyDir(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// resum writes shard file's new sha256 into the store's manifest, as a foreign tool would.
func resum(t *testing.T, dir, file string, content []byte) {
	t.Helper()
	mp := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	for _, s := range m["shards"].([]any) {
		if e := s.(map[string]any); e["file"] == file {
			e["sha256"] = hex.EncodeToString(sum[:])
		}
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
