package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/schema"
)

// TestBadInput damages a good store four ways; each must give an error that
// names the damaged file, from the reader and from Verify.
func TestBadInput(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file that must be named
		is     error
	}{
		{"truncated-shard", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "part-00001.parquet")
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return p
		}, ErrCorrupt},
		{"sha256-mismatch", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "part-00001.parquet")
			testkit.FlipByte(t, p)
			return p
		}, ErrChecksum},
		{"missing-shard", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "part-00002.parquet")
			os.Remove(p)
			return p
		}, ErrMissingShard},
		{"other-schema-version", func(t *testing.T, dir string) string {
			return rewriteWithVersion(t, dir, "part-00000.parquet", "3")
		}, schema.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
				t.Fatal(err)
			}
			file := tc.damage(t, dir)
			rep, err := Verify(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range rep.Problems {
				if p.File == file && errors.Is(p.Err, tc.is) && strings.Contains(p.Err.Error(), file) {
					found = true
				}
			}
			if !found {
				t.Fatalf("Verify problems %v; want %v naming %s", rep.Problems, tc.is, file)
			}
			// The reader fails too, naming the file.
			r, err := OpenReader(dir)
			if err == nil {
				err = r.Scan(context.Background(), nil, func(arrow.RecordBatch) error { return nil })
			}
			if tc.is == ErrChecksum {
				return // a flipped byte inside a compressed page may still decode; only the checksum catches it for sure
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), file) {
				t.Fatalf("reader: %v; want %v naming %s", err, tc.is, file)
			}
		})
	}
	t.Run("missing-image", func(t *testing.T) {
		dir := t.TempDir()
		w, err := OpenWriter(dir, md, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < 60; i++ {
			if i == 17 {
				continue
			}
			for _, r := range synthRows(1, i, 20, 2) {
				w.Write(r)
			}
		}
		w.Close()
		rep, err := Verify(context.Background(), dir)
		if err != nil || rep.OK() || !errors.Is(rep.Problems[0].Err, ErrIncomplete) || !strings.Contains(rep.Problems[0].Err.Error(), "[17]") {
			t.Fatalf("Verify: %v %v", err, rep.Problems)
		}
	})
	t.Run("index-outside-dataset", func(t *testing.T) {
		// The last image of a shard moved past the dataset's 60 images, in
		// order still: Verify names the index, where before it only saw
		// the hole it left (and added the index to its set of seen images,
		// which grows to hold any index, however large).
		dir := t.TempDir()
		if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
			t.Fatal(err)
		}
		p := rewriteIndices(t, dir, "manifest.json", "part-00001.parquet", func(ix []int64) {
			for i := len(ix) - md.Views.Count; i < len(ix); i++ {
				ix[i] = 1000
			}
		})
		rep, err := Verify(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pr := range rep.Problems {
			found = found || (pr.File == p && errors.Is(pr.Err, ErrContent) && strings.Contains(pr.Err.Error(), "image index 1000, dataset has 60 images"))
		}
		if !found {
			t.Fatalf("Verify problems %v; want one naming %s and image index 1000", rep.Problems, p)
		}
	})
	t.Run("unlisted-file", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "part-00000.parquet"))
		stray := filepath.Join(dir, "part-00099.parquet")
		os.WriteFile(stray, b, 0o644)
		rep, err := Verify(context.Background(), dir)
		if err != nil || rep.OK() || rep.Problems[0].File != stray {
			t.Fatalf("Verify: %v %v", err, rep.Problems)
		}
	})
}

// rewriteWithVersion rewrites a shard with its deitkd.schema_version set to
// v, so that only the version is wrong.
func rewriteWithVersion(t *testing.T, dir, name, v string) string {
	t.Helper()
	return rewriteShard(t, dir, "manifest.json", name, func(tbl arrow.Table) arrow.Table {
		meta := tbl.Schema().Metadata()
		vals := append([]string(nil), meta.Values()...)
		for i, k := range meta.Keys() {
			if k == schema.KeySchemaVersion {
				vals[i] = v
			}
		}
		nm := arrow.NewMetadata(meta.Keys(), vals)
		return withSchema(arrow.NewSchema(tbl.Schema().Fields(), &nm), tbl)
	})
}

// rewriteIndices rewrites a shard listed in manifest manName with its
// image_index column passed through edit.
func rewriteIndices(t *testing.T, dir, manName, name string, edit func([]int64)) string {
	t.Helper()
	return rewriteShard(t, dir, manName, name, func(tbl arrow.Table) arrow.Table {
		c := tbl.Schema().FieldIndices(schema.ColImageIndex)[0]
		var vals []int64
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			vals = append(vals, chunk.(*array.Int64).Int64Values()...)
		}
		edit(vals)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(vals, nil)
		return replaceColumn(tbl, c, b)
	})
}

// replaceColumn returns tbl with column c replaced by what builder b holds.
func replaceColumn(tbl arrow.Table, c int, b array.Builder) arrow.Table {
	arr := b.NewArray()
	defer arr.Release()
	cols := make([]arrow.Column, tbl.NumCols())
	for i := range cols {
		cols[i] = *tbl.Column(i)
		if i == c {
			cols[i] = *arrow.NewColumn(tbl.Schema().Field(i), arrow.NewChunked(arr.DataType(), []arrow.Array{arr}))
		}
	}
	return array.NewTable(tbl.Schema(), cols, tbl.NumRows())
}

// rewriteShard rewrites Parquet shard name as the table edit returns (its
// schema metadata included), and fixes the shard's size and sha256 in
// manifest manName, so that only what edit changed is wrong. It returns the
// shard's path.
func rewriteShard(t *testing.T, dir, manName, name string, edit func(arrow.Table) arrow.Table) string {
	t.Helper()
	p := filepath.Join(dir, name)
	sr, err := openShard(p, FormatParquet, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	read, err := sr.pq.ReadTable(context.Background())
	sch := sr.schema // ReadTable's table lacks the schema metadata
	sr.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer read.Release()
	tbl := withSchema(sch, read)
	defer tbl.Release()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	err = pqarrow.WriteTable(edit(tbl), f, 1<<20, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	man, err := ReadManifest(filepath.Join(dir, manName))
	if err != nil {
		t.Fatal(err)
	}
	for i := range man.Shards {
		if man.Shards[i].File == name {
			fi, _ := os.Stat(p)
			man.Shards[i].Bytes = fi.Size()
			man.Shards[i].SHA256, _ = filehash.SHA256(p)
		}
	}
	if err := man.write(filepath.Join(dir, manName)); err != nil {
		t.Fatal(err)
	}
	return p
}

func withSchema(sch *arrow.Schema, tbl arrow.Table) arrow.Table {
	cols := make([]arrow.Column, tbl.NumCols())
	for i := range cols {
		cols[i] = *arrow.NewColumn(sch.Field(i), tbl.Column(i).Data())
	}
	return array.NewTable(sch, cols, tbl.NumRows())
}
