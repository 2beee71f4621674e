package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

type storeCase struct {
	name   string
	mode   schema.Mode
	dtype  schema.DType
	format Format
}

var storeCases = []storeCase{
	{"full-float32-parquet", schema.ModeFull, schema.Float32, FormatParquet},
	{"full-float16-parquet", schema.ModeFull, schema.Float16, FormatParquet},
	{"topk-float32-parquet", schema.ModeTopK, schema.Float32, FormatParquet},
	{"topk-float16-parquet", schema.ModeTopK, schema.Float16, FormatParquet},
	{"full-float16-arrow", schema.ModeFull, schema.Float16, FormatArrow},
	{"topk-float16-arrow", schema.ModeTopK, schema.Float16, FormatArrow},
}

// smallOpts makes several shards and row groups out of a few hundred rows.
func smallOpts(f Format) Options { return Options{Format: f, ShardRows: 40, RowGroupRows: 16} }

// stored is what a row's logits become in the store's dtype.
func stored(v float32, d schema.DType) float32 {
	if d == schema.Float16 {
		h, _ := half.FromFloat32(v)
		return half.ToFloat32(h)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	const seed, classes, k, views, images = 3, 20, 5, 3, 50
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := testMeta(tc.mode, tc.dtype, classes, k, views, images)
			if err := writeStore(dir, md, smallOpts(tc.format), seed); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			if r.Manifest.Rows != images*views || len(r.Manifest.Shards) < 3 {
				t.Fatalf("%d rows in %d shards, want %d rows in several", r.Manifest.Rows, len(r.Manifest.Shards), images*views)
			}
			for _, s := range r.Manifest.Shards {
				if s.Rows != s.Images*views {
					t.Errorf("shard %s splits an image: %d rows, %d images", s.File, s.Rows, s.Images)
				}
			}
			tg, err := r.LoadTargets(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := int64(0); i < images; i++ {
				for _, row := range synthRows(seed, i, classes, views) {
					got, err := tg.Lookup(row.ImageID, int(row.View))
					if err != nil {
						t.Fatal(err)
					}
					hard, lse := argmaxLSE(row.Logits)
					if got.Hard != hard {
						t.Fatalf("%s view %d: hard %d, want %d", row.ImageID, row.View, got.Hard, hard)
					}
					want := row.Logits
					if tc.mode == schema.ModeTopK {
						idx := make([]int32, k)
						topK(row.Logits, idx)
						if fmt.Sprint(got.Index) != fmt.Sprint(idx) {
							t.Fatalf("%s view %d: topk %v, want %v", row.ImageID, row.View, got.Index, idx)
						}
						want = make([]float32, k)
						for j, c := range idx {
							want[j] = row.Logits[c]
						}
						if got.LogSumExp != lse {
							t.Fatalf("logsumexp %v, want %v", got.LogSumExp, lse)
						}
					}
					for j := range want {
						if got.Logits[j] != stored(want[j], tc.dtype) {
							t.Fatalf("%s view %d logit %d: %v, want %v (from %v)", row.ImageID, row.View, j, got.Logits[j], stored(want[j], tc.dtype), want[j])
						}
					}
					byIdx, err := tg.LookupIndex(i, int(row.View))
					if err != nil || byIdx.Hard != got.Hard {
						t.Fatalf("LookupIndex(%d, %d) = %v, %v", i, row.View, byIdx, err)
					}
				}
			}
			if _, err := tg.Lookup("nope", 0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup of unknown id: %v", err)
			}
			if _, err := tg.Lookup(synthRows(seed, 0, classes, views)[0].ImageID, views); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup of view %d: %v", views, err)
			}
			// The other columns, through Scan.
			var n int
			err = r.Scan(context.Background(), []string{schema.ColImageIndex, schema.ColView, schema.ColCrop, schema.ColFlip, schema.ColLabel, schema.ColImageID}, func(rec arrow.RecordBatch) error {
				idx := rec.Column(0).(*array.Int64)
				view := rec.Column(1).(*array.Int32)
				crop := rec.Column(2).(*array.FixedSizeList).ListValues().(*array.Float32).Float32Values()
				flip := rec.Column(3).(*array.Boolean)
				label := rec.Column(4).(*array.Int32)
				for i := 0; i < int(rec.NumRows()); i++ {
					want := synthRows(seed, idx.Value(i), classes, views)[view.Value(i)]
					if [4]float32(crop[4*i:4*i+4]) != want.Crop || flip.Value(i) != want.Flip || rec.Column(5).(*array.String).Value(i) != want.ImageID {
						t.Fatalf("row %d differs from what was written", n)
					}
					if (want.Label == NoLabel) != label.IsNull(i) || (!label.IsNull(i) && label.Value(i) != want.Label) {
						t.Fatalf("row %d: label null=%v %d, want %d", n, label.IsNull(i), label.Value(i), want.Label)
					}
					n++
				}
				return nil
			})
			if err != nil || n != images*views {
				t.Fatalf("Scan: %d rows, %v", n, err)
			}
			rep, err := Verify(context.Background(), dir)
			if err != nil || !rep.OK() {
				t.Fatalf("Verify: %v %v", err, rep.Problems)
			}
		})
	}
}

func TestTopK(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logits []float32
		k      int
		want   string
	}{
		{"sorted", []float32{5, 4, 3, 2, 1}, 3, "[0 1 2]"},
		{"reversed", []float32{1, 2, 3, 4, 5}, 2, "[4 3]"},
		{"ties-to-lower", []float32{1, 3, 3, 0, 3}, 2, "[1 2]"},
		{"all", []float32{0.5, -1, 2}, 3, "[2 0 1]"},
		{"negative", []float32{-5, -1, -3, -2}, 2, "[1 3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := make([]int32, tc.k)
			topK(tc.logits, idx)
			if fmt.Sprint(idx) != tc.want {
				t.Fatalf("topK = %v, want %s", idx, tc.want)
			}
		})
	}
}

func TestDense(t *testing.T) {
	row := synthRows(9, 4, 50, 1)[0]
	const k = 8
	_, lse := argmaxLSE(row.Logits)
	full := Target{Mode: schema.ModeFull, NumClasses: 50, Logits: row.Logits}
	idx := make([]int32, k)
	topK(row.Logits, idx)
	top := Target{Mode: schema.ModeTopK, NumClasses: 50, Index: idx, LogSumExp: lse}
	for _, c := range idx {
		top.Logits = append(top.Logits, row.Logits[c])
	}
	storedSet := map[int32]bool{}
	for _, c := range idx {
		storedSet[c] = true
	}
	for _, tau := range []float64{0.5, 1, 2, 4} {
		t.Run(fmt.Sprintf("tau=%g", tau), func(t *testing.T) {
			pf := Dense(full, tau, nil)
			pt := Dense(top, tau, nil)
			var sf, st, leftF, leftT float64
			for c := range pf {
				sf += float64(pf[c])
				st += float64(pt[c])
				if !storedSet[int32(c)] {
					leftF += float64(pf[c])
					leftT += float64(pt[c])
				}
			}
			if math.Abs(sf-1) > 1e-5 || math.Abs(st-1) > 1e-5 {
				t.Fatalf("sums %v %v", sf, st)
			}
			// Stored classes keep exact ratios at every tau.
			for j := 1; j < k; j++ {
				want := math.Exp((float64(top.Logits[j]) - float64(top.Logits[0])) / tau)
				got := float64(pt[idx[j]]) / float64(pt[idx[0]])
				if math.Abs(got-want) > 1e-5*want {
					t.Fatalf("ratio class %d/%d = %v, want %v", idx[j], idx[0], got, want)
				}
			}
			switch {
			case tau == 1:
				for _, c := range idx {
					if math.Abs(float64(pt[c]-pf[c])) > 1e-6 {
						t.Fatalf("tau=1 class %d: %v, want %v", c, pt[c], pf[c])
					}
				}
				if math.Abs(leftT-leftF) > 1e-6 {
					t.Fatalf("tau=1 leftover %v, want %v", leftT, leftF)
				}
			case tau > 1:
				if leftT < leftF-1e-7 {
					t.Fatalf("tau=%g leftover %v below the true %v: the uniform assumption must overstate it", tau, leftT, leftF)
				}
			default:
				if leftT > leftF+1e-7 {
					t.Fatalf("tau=%g leftover %v above the true %v: the uniform assumption must understate it", tau, leftT, leftF)
				}
			}
		})
	}
	t.Run("k=K", func(t *testing.T) {
		idx := make([]int32, 50)
		topK(row.Logits, idx)
		all := Target{Mode: schema.ModeTopK, NumClasses: 50, Index: idx, LogSumExp: lse}
		for _, c := range idx {
			all.Logits = append(all.Logits, row.Logits[c])
		}
		pf, pt := Dense(full, 2, nil), Dense(all, 2, nil)
		for c := range pf {
			if math.Abs(float64(pf[c]-pt[c])) > 1e-6 {
				t.Fatalf("class %d: %v, want %v", c, pt[c], pf[c])
			}
		}
	})
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 30)
	w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 25; i++ { // 20-row shards of 10 images; images 20..24 stay in the open shard
		for _, r := range synthRows(1, i, 20, 2) {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Abort()
	t.Run("different-config", func(t *testing.T) {
		other := md
		other.Preprocess.Crop = 256
		_, err := OpenWriter(dir, other, smallOpts(FormatParquet))
		if !errors.Is(err, schema.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.preprocess.crop: store has 224, run wants 256") {
			t.Fatalf("OpenWriter with another crop: %v", err)
		}
		other = md
		other.CreatedBy = "a newer deitkd"
		w, err := OpenWriter(dir, other, smallOpts(FormatParquet))
		if err != nil {
			t.Fatalf("created_by alone must not block resume: %v", err)
		}
		w.Abort()
	})
	w, err = OpenWriter(dir, md, Options{ShardRows: 40, RowGroupRows: 16})
	if err != nil {
		t.Fatal(err)
	}
	if w.Done().Len() != 20 {
		t.Fatalf("%d images done, want 0..19", w.Done().Len())
	}
	for i := range int64(20) {
		if !w.Done().Contains(i) {
			t.Fatalf("image %d not done, want 0..19", i)
		}
	}
	if err := w.Write(synthRows(1, 3, 20, 2)[0]); !errors.Is(err, ErrOrder) {
		t.Fatalf("rewriting a done image: %v", err)
	}
	w.Abort()
	if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || !rep.OK() || rep.Rows != 60 {
		t.Fatalf("Verify after resume: %v %+v", err, rep)
	}
}

// TestResumeManyParts resumes a writer whose store holds parts 00000..00013:
// the resumed session must number its parts from 00014 on (part numbers are
// decimal; read as octal, 00012 is 10 and the next part would overwrite
// part-00012), leaving every finished shard as it was.
func TestResumeManyParts(t *testing.T) {
	const images, first = 60, 14 // one image a shard: 14 parts in the first session, more in the second
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 1, images)
	opts := Options{ShardRows: 1, RowGroupRows: 1}
	for _, tc := range []struct {
		name  string
		shard ShardSpec
	}{
		{"single-writer", ShardSpec{}},
		{"split-writer", ShardSpec{Index: 1, Count: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := opts
			o.Shard = tc.shard
			end := int64(first)
			if tc.shard.split() {
				end = 2 * first // writer 1 of 2 owns every other image
			}
			if err := writeUpTo(dir, md, o, 1, end); err != nil {
				t.Fatal(err)
			}
			manPath := filepath.Join(dir, manifestName(tc.shard))
			before, err := ReadManifest(manPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(before.Shards) != first {
				t.Fatalf("first session wrote %d shards, want %d", len(before.Shards), first)
			}
			if err := writeStore(dir, md, o, 1); err != nil {
				t.Fatalf("resumed session: %v", err)
			}
			after, err := ReadManifest(manPath)
			if err != nil {
				t.Fatalf("manifest after resume: %v", err)
			}
			for i, s := range before.Shards {
				if after.Shards[i] != s {
					t.Fatalf("shard %d was %+v, after resume %+v", i, s, after.Shards[i])
				}
				if sum, err := filehash.SHA256(filepath.Join(dir, s.File)); err != nil || sum != s.SHA256 {
					t.Fatalf("%s overwritten by the resumed session: sha256 %s, %v", s.File, sum, err)
				}
			}
			numbers := map[int]string{}
			for _, s := range after.Shards {
				n, ok, err := ownsPart(s.File, tc.shard, FormatParquet)
				if !ok || err != nil {
					t.Fatalf("%s: not a part of writer %v: %v", s.File, tc.shard, err)
				}
				if prev, dup := numbers[n]; dup {
					t.Fatalf("part number %d twice: %s and %s", n, prev, s.File)
				}
				numbers[n] = s.File
			}
			if want := images / max(tc.shard.Count, 1); after.Images != int64(want) || len(after.Shards) != want {
				t.Fatalf("after resume: %d images in %d shards, want %d in %d", after.Images, len(after.Shards), want, want)
			}
			if tc.shard.split() {
				if err := writeStore(dir, md, Options{ShardRows: 1, RowGroupRows: 1, Shard: ShardSpec{Index: 0, Count: 2}}, 1); err != nil {
					t.Fatal(err)
				}
				if _, err := Merge(context.Background(), dir); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Verify(context.Background(), dir)
			if err != nil || !rep.OK() || rep.Rows != images {
				t.Fatalf("Verify after resume: %v %+v", err, rep)
			}
			one := t.TempDir()
			if err := writeStore(one, md, smallOpts(FormatParquet), 1); err != nil {
				t.Fatal(err)
			}
			if rowsOf(t, dir) != rowsOf(t, one) {
				t.Fatal("rows after resume differ from an uninterrupted run's")
			}
		})
	}
}

// TestPartNumbers reads part numbers as decimal with leading zeros.
func TestPartNumbers(t *testing.T) {
	split := ShardSpec{Index: 3, Count: 12}
	for _, tc := range []struct {
		name string
		spec ShardSpec
		n    int
		ok   bool
		err  bool
	}{
		{"part-00007.parquet", ShardSpec{}, 7, true, false},
		{"part-00008.parquet", ShardSpec{}, 8, true, false},
		{"part-00010.parquet", ShardSpec{}, 10, true, false},
		{".part-00019.parquet.tmp", ShardSpec{}, 19, true, false},
		{"part-123456.parquet", ShardSpec{}, 123456, true, false},
		{"part-3-of-12-00011.parquet", split, 11, true, false},
		{".part-3-of-12-00009.parquet.tmp", split, 9, true, false},
		{"part-3-of-12-00009.parquet", ShardSpec{}, 0, false, false},
		{"part-4-of-12-00009.parquet", split, 0, false, false},
		{"part-00009.arrow", ShardSpec{}, 0, false, false},
		{"part-99999999999999999999.parquet", ShardSpec{}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok, err := ownsPart(tc.name, tc.spec, FormatParquet)
			if n != tc.n || ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("ownsPart = %d, %v, %v; want %d, %v, error %v", n, ok, err, tc.n, tc.ok, tc.err)
			}
			if err != nil && (!errors.Is(err, ErrContent) || !strings.Contains(err.Error(), tc.name)) {
				t.Fatalf("error %v does not wrap ErrContent naming %s", err, tc.name)
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	md := testMeta(schema.ModeFull, schema.Float32, 4, 0, 2, 10)
	good := func() Row {
		return Row{ImageIndex: 5, ImageID: "a", Label: 1, View: 0, Logits: []float32{1, 2, 3, 4}}
	}
	for _, tc := range []struct {
		name  string
		spec  ShardSpec
		first *Row
		row   func(Row) Row
		is    error
	}{
		{"logit-count", ShardSpec{}, nil, func(r Row) Row { r.Logits = r.Logits[:3]; return r }, ErrRow},
		{"nan", ShardSpec{}, nil, func(r Row) Row { r.Logits[2] = float32(math.NaN()); return r }, ErrRow},
		{"inf", ShardSpec{}, nil, func(r Row) Row { r.Logits[0] = float32(math.Inf(-1)); return r }, ErrRow},
		{"label", ShardSpec{}, nil, func(r Row) Row { r.Label = 4; return r }, ErrRow},
		{"view", ShardSpec{}, nil, func(r Row) Row { r.View = 2; return r }, ErrRow},
		{"image-count", ShardSpec{}, nil, func(r Row) Row { r.ImageIndex = 10; return r }, ErrRow},
		{"other-writer", ShardSpec{Index: 1, Count: 2}, nil, func(r Row) Row { r.ImageIndex = 4; return r }, ErrNotMyShard},
		{"order-image", ShardSpec{}, &Row{ImageIndex: 6, ImageID: "b", Logits: []float32{1, 2, 3, 4}}, func(r Row) Row { return r }, ErrOrder},
		{"order-view", ShardSpec{}, &Row{ImageIndex: 5, ImageID: "a", View: 1, Logits: []float32{1, 2, 3, 4}}, func(r Row) Row { return r }, ErrOrder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := OpenWriter(t.TempDir(), md, Options{Shard: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if tc.first != nil {
				if err := w.Write(*tc.first); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Write(tc.row(good())); !errors.Is(err, tc.is) {
				t.Fatalf("Write = %v, want %v", err, tc.is)
			}
		})
	}
}

// TestFailureLog checks that failures survive in failures/, outside the
// *.parquet glob of the store folder.
func TestFailureLog(t *testing.T) {
	dir := t.TempDir()
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 6)
	w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 6; i++ {
		if i == 2 || i == 4 {
			w.Fail(Failure{ImageIndex: i, ImageID: fmt.Sprint("img", i), Stage: "decode", Err: "decode img: unexpected EOF"})
			continue
		}
		for _, r := range synthRows(1, i, 20, 2) {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := r.Failures()
	if err != nil || len(fs) != 2 || fs[1].ImageIndex != 4 || fs[1].Stage != "decode" || fs[1].Err != "decode img: unexpected EOF" {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.parquet")); len(m) != 1 {
		t.Fatalf("glob sees %v", m)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || !rep.OK() || rep.Failures != 2 {
		t.Fatalf("Verify: %v %+v", err, rep)
	}
	// A resumed session retries failed images; the old log goes.
	w, err = OpenWriter(dir, md, smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	if w.Done().Contains(2) || !w.Done().Contains(3) {
		t.Fatal("failed image 2 reported done, or stored image 3 not")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "failures", "failures.parquet")); !os.IsNotExist(err) {
		t.Fatalf("stale failure log left: %v", err)
	}
}

func TestSplitAndMerge(t *testing.T) {
	dir := t.TempDir()
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 31)
	const n = 3
	if _, err := Merge(context.Background(), dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Merge of nothing: %v", err)
	}
	for i := 0; i < n; i++ {
		if i == 2 {
			if _, err := Merge(context.Background(), dir); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "manifest.2-of-3.json") {
				t.Fatalf("Merge with a writer missing: %v", err)
			}
		}
		opts := smallOpts(FormatParquet)
		opts.Shard = ShardSpec{Index: i, Count: n}
		if err := writeStore(dir, md, opts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenReader(dir); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "labels merge") {
		t.Fatalf("OpenReader before merge: %v", err)
	}
	if _, err := Verify(context.Background(), dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Verify before merge: %v", err)
	}
	m, err := Merge(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 62 || m.Images != 31 {
		t.Fatalf("merged %d rows %d images", m.Rows, m.Images)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %v", err, rep.Problems)
	}
	one := t.TempDir()
	if err := writeStore(one, md, smallOpts(FormatParquet), 1); err != nil {
		t.Fatal(err)
	}
	if a, b := rowsOf(t, dir), rowsOf(t, one); a != b {
		t.Fatal("split store's rows differ from a single writer's")
	}
	t.Run("layout", func(t *testing.T) {
		if _, err := OpenWriter(dir, md, Options{}); !errors.Is(err, schema.ErrMismatch) {
			t.Fatalf("single writer in a split store: %v", err)
		}
		if _, err := OpenWriter(dir, md, Options{Shard: ShardSpec{Index: 0, Count: 2}}); !errors.Is(err, schema.ErrMismatch) {
			t.Fatalf("writer 0-of-2 in a 3-way split store: %v", err)
		}
		if _, err := OpenWriter(one, md, Options{Shard: ShardSpec{Index: 0, Count: 2}}); !errors.Is(err, schema.ErrMismatch) {
			t.Fatalf("split writer in a single writer's store: %v", err)
		}
	})
	t.Run("disagreeing-writer", func(t *testing.T) {
		other := md
		other.Views.Seed = 2
		bad := t.TempDir()
		for i := 0; i < 2; i++ {
			opts := Options{Shard: ShardSpec{Index: i, Count: 2}}
			mdi := md
			if i == 1 {
				mdi = other
			}
			if err := writeStore(bad, mdi, opts, 1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Merge(context.Background(), bad); !errors.Is(err, schema.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.views.seed") {
			t.Fatalf("Merge of disagreeing writers: %v", err)
		}
	})
}

// rowsOf returns every row of a store, sorted by (image_index, view), as text.
func rowsOf(t *testing.T, dir string) string {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Export(context.Background(), r, &b, "jsonl", 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	sortByIndex(lines)
	return strings.Join(lines, "\n")
}

func sortByIndex(lines []string) {
	key := func(s string) string {
		var idx, view int
		i := strings.Index(s, `"image_index":`)
		fmt.Sscan(s[i+len(`"image_index":`):], &idx)
		j := strings.Index(s, `"view":`)
		fmt.Sscan(strings.TrimRight(s[j+len(`"view":`):j+len(`"view":`)+6], ",\"c"), &view)
		return fmt.Sprintf("%012d-%06d", idx, view)
	}
	keys := make(map[string]string, len(lines))
	for _, l := range lines {
		keys[l] = key(l)
	}
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && keys[lines[j]] < keys[lines[j-1]]; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	md := testMeta(schema.ModeTopK, schema.Float32, 20, 3, 2, 4)
	if err := writeStore(dir, md, Options{}, 1); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ format, want string }{
		{"csv", "image_id,image_index,label,view,crop,flip,teacher_hard,topk_index,topk_logit,logsumexp\n"},
		{"jsonl", `{"image_id":"train/`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var b strings.Builder
			if err := Export(context.Background(), r, &b, tc.format, 3); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if !strings.HasPrefix(b.String(), tc.want) || (tc.format == "jsonl" && len(lines) != 3) || (tc.format == "csv" && len(lines) != 4) {
				t.Fatalf("export:\n%s", b.String())
			}
		})
	}
	if err := Export(context.Background(), r, os.Stdout, "xml", 0); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestInspect(t *testing.T) {
	for _, tc := range storeCases[:4] {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			md := testMeta(tc.mode, tc.dtype, 20, 5, 2, 40)
			if err := writeStore(dir, md, Options{}, 5); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReader(dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Inspect(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			// Recompute from the generator.
			var top1, labelled int64
			var hist0 int64
			for i := int64(0); i < 40; i++ {
				for _, row := range synthRows(5, i, 20, 2) {
					h, _ := argmaxLSE(row.Logits)
					if h == 0 {
						hist0++
					}
					if row.Label != NoLabel {
						labelled++
						if h == row.Label {
							top1++
						}
					}
				}
			}
			if s.Labelled != labelled || s.Top1 != float64(top1)/float64(labelled) || s.HardHist[0] != hist0 || !s.Top5Known || s.Top5 < s.Top1 {
				t.Fatalf("summary %+v; want labelled %d top1 %d/%d hist[0] %d", s, labelled, top1, labelled, hist0)
			}
			if s.MeanEntropy <= 0 || s.MeanEntropy > math.Log(20) {
				t.Fatalf("mean entropy %v", s.MeanEntropy)
			}
		})
	}
}
