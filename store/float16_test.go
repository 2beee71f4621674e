package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"

	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

// numpyFloat16 reads the finite, in-range entries of numpy's float16
// reference table (internal/half/testdata/float16_rne.txt, made by
// scripts/float16_rne_table.py): float32 inputs and the float16 bits of
// np.float32(x).astype(np.float16).
func numpyFloat16(t *testing.T) (xs []float32, want []uint16) {
	t.Helper()
	f, err := os.Open("../internal/half/testdata/float16_rne.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		var xb uint32
		var h uint16
		if _, err := fmt.Sscanf(sc.Text(), "%x %x", &xb, &h); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if h&0x7c00 == 0x7c00 { // ±Inf or NaN: the writer refuses these
			continue
		}
		xs, want = append(xs, math.Float32frombits(xb)), append(want, h)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return xs, want
}

// TestFloat16Stored writes the logits of numpy's reference table into
// float16 stores (full and top-k, Parquet and Arrow), reads them back
// through LoadTargets and (full) Export, and wants numpy's float16 for
// every one, bit for bit (-0 and subnormals included).
func TestFloat16Stored(t *testing.T) {
	const classes, k = 10, 4
	xs, want := numpyFloat16(t)
	images := len(xs) / classes
	differ := 0
	for i, x := range xs[:images*classes] {
		if float16.New(x).Uint16() != want[i] {
			differ++
		}
	}
	if differ < 100 {
		t.Fatalf("only %d of the logits round differently from truncation", differ)
	}
	wantAt := func(img, c int) uint32 { return math.Float32bits(half.ToFloat32(want[img*classes+c])) }
	id := func(img int) string { return fmt.Sprintf("img/%03d", img) }
	for _, tc := range []storeCase{
		{"full-parquet", schema.ModeFull, schema.Float16, FormatParquet},
		{"full-arrow", schema.ModeFull, schema.Float16, FormatArrow},
		{"topk-parquet", schema.ModeTopK, schema.Float16, FormatParquet},
		{"topk-arrow", schema.ModeTopK, schema.Float16, FormatArrow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := testMeta(tc.mode, tc.dtype, classes, k, 1, int64(images))
			w, err := OpenWriter(dir, md, Options{Format: tc.format, ShardRows: 20, RowGroupRows: 8})
			if err != nil {
				t.Fatal(err)
			}
			for img := 0; img < images; img++ {
				r := Row{ImageIndex: int64(img), ImageID: id(img), Label: 1, Crop: [4]float32{0, 0, 1, 1}, Logits: xs[img*classes : (img+1)*classes]}
				if err := w.Write(r); err != nil {
					w.Abort()
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := r.LoadTargets(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for img := 0; img < images; img++ {
				got, err := tg.Lookup(id(img), 0)
				if err != nil {
					t.Fatal(err)
				}
				for j, v := range got.Logits {
					c := j
					if tc.mode == schema.ModeTopK {
						c = int(got.Index[j])
					}
					if math.Float32bits(v) != wantAt(img, c) {
						t.Errorf("%s class %d: stored %g (%#08x), numpy's float16 of %g is %g", id(img), c, v, math.Float32bits(v), xs[img*classes+c], half.ToFloat32(want[img*classes+c]))
					}
				}
			}
			if tc.mode != schema.ModeFull {
				return
			}
			// Export reads the float16 column through the row codec (getLogits).
			var b strings.Builder
			if err := Export(context.Background(), r, &b, "jsonl", 0); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(b.String()))
			for img := 0; img < images; img++ {
				var row struct {
					ImageID string    `json:"image_id"`
					Logits  []float32 `json:"teacher_logits"`
				}
				if err := dec.Decode(&row); err != nil {
					t.Fatalf("export row %d: %v", img, err)
				}
				for c, v := range row.Logits {
					if math.Float32bits(v) != wantAt(img, c) {
						t.Errorf("export %s class %d: %g, want %g", row.ImageID, c, v, half.ToFloat32(want[img*classes+c]))
					}
				}
			}
		})
	}
}

// TestFloat16Overflow: a logit that float16 cannot hold (|x| ≥ 65520
// rounds to Inf) is refused with an error naming the row, the class, the
// value and the column, and the refused row leaves the writer usable.
// Top-k stores check only the logits they store; float32 stores take them.
func TestFloat16Overflow(t *testing.T) {
	row := func(index int64, logits ...float32) Row {
		return Row{ImageIndex: index, ImageID: fmt.Sprintf("img/%d", index), Label: 0, Crop: [4]float32{0, 0, 1, 1}, Logits: logits}
	}
	for _, tc := range []struct {
		name  string
		mode  schema.Mode
		dtype schema.DType
		bad   Row
		msg   []string // in the error; none: the row is accepted
	}{
		{"full", schema.ModeFull, schema.Float16, row(0, 1, 2, 70000, 4), []string{"write img/0 view 0: ", "logit 2 is 70000", "teacher_logits[2]", "65504"}},
		{"full-negative", schema.ModeFull, schema.Float16, row(0, 1, -65520, 3, 4), []string{"logit 1 is -65520", "teacher_logits[1]"}},
		{"full-largest", schema.ModeFull, schema.Float16, row(0, 1, 65519.996, -65519.996, 4), nil},
		{"topk", schema.ModeTopK, schema.Float16, row(0, 1, 2, 70000, 4), []string{"write img/0 view 0: ", "logit 2 is 70000", "topk_logit[0]"}},
		{"topk-unstored", schema.ModeTopK, schema.Float16, row(0, 1, 2, -70000, 4), nil},
		{"float32", schema.ModeFull, schema.Float32, row(0, 1, 2, 70000, 4), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := testMeta(tc.mode, tc.dtype, 4, 2, 1, 2)
			w, err := OpenWriter(dir, md, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			err = w.Write(tc.bad)
			rows := int64(1)
			if tc.msg == nil {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
			} else {
				rows = 0
				if !errors.Is(err, ErrRow) {
					t.Fatalf("Write = %v, want ErrRow", err)
				}
				for _, m := range tc.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not say %q", err, m)
					}
				}
			}
			// The writer goes on: the next image is written, and only what
			// was accepted is in the store.
			if err := w.Write(row(1, 4, 3, 2, 1)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			if r.Manifest.Rows != rows+1 {
				t.Fatalf("%d rows stored, want %d", r.Manifest.Rows, rows+1)
			}
			tg, err := r.LoadTargets(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "full-largest" {
				got, _ := tg.Lookup("img/0", 0)
				if got.Logits[1] != 65504 || got.Logits[2] != -65504 {
					t.Errorf("65519.996 stored as %v, want ±65504", got.Logits)
				}
			}
		})
	}
}
