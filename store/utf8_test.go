package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/schema"
)

// TestWriterRefusesNotUTF8ID: a Row or Failure whose image_id is not valid UTF-8 (a file name
// as on disk) is refused, since DuckDB refuses a shard whose utf8 column holds one; a failure's
// error text that is not UTF-8 is stored escaped.
func TestWriterRefusesNotUTF8ID(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 4)
	dir := t.TempDir()
	w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
	if err != nil {
		t.Fatal(err)
	}
	r := synthRows(1, 0, md.NumClasses, md.Views.Count)[0]
	r.ImageID = "cat/caf\xe9.png"
	if err := w.Write(r); !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), `caf\xe9`) {
		t.Fatalf("Write = %v, want ErrRow naming the id", err)
	}
	if err := w.Fail(Failure{ImageIndex: 1, ImageID: "caf\xe9.png", Stage: "decode", Err: "x"}); !errors.Is(err, ErrRow) {
		t.Fatalf("Fail = %v, want ErrRow", err)
	}
	for i := int64(0); i < 3; i++ {
		for _, r := range synthRows(1, i, md.NumClasses, md.Views.Count) {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Fail(Failure{ImageIndex: 3, ImageID: `caf\xe9.png`, Stage: "read", Err: "open /d/caf\xe9.png: permission denied"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %v, %v", rep, err)
	}
	rd, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := rd.Failures()
	if err != nil || len(fs) != 1 || fs[0].Err != `open /d/caf\xe9.png: permission denied` {
		t.Fatalf("failures %+v, %v", fs, err)
	}
}

// TestVerifyNotUTF8ID: a shard whose image_id column holds bytes that are not UTF-8 (as
// writers before this check stored a file name) is a problem naming the shard, row and id.
func TestVerifyNotUTF8ID(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	dir := t.TempDir()
	if err := writeStore(dir, md, smallOpts(FormatParquet), 1); err != nil {
		t.Fatal(err)
	}
	p := rewriteShard(t, dir, "manifest.json", "part-00001.parquet", func(tbl arrow.Table) arrow.Table {
		c := tbl.Schema().FieldIndices(schema.ColImageID)[0]
		var vals []string
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			s := chunk.(*array.String)
			for i := range s.Len() {
				vals = append(vals, s.Value(i))
			}
		}
		for i := range vals { // both views of the shard's second image
			if i == 2 || i == 3 {
				vals[i] += "\xff"
			}
		}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(vals, nil)
		return replaceColumn(tbl, c, b)
	})
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() { // the shard's check stops there: its later images are also reported missing
		t.Fatal("Verify passed")
	}
	pr := rep.Problems[0]
	msg := pr.Err.Error()
	if pr.File != p || !errors.Is(pr.Err, ErrContent) || !strings.Contains(msg, "row 2:") || !strings.Contains(msg, `\xff"`) || !strings.Contains(msg, "not valid UTF-8") {
		t.Fatalf("problem %s: %v, want shard %s row 2 with the id quoted", pr.File, pr.Err, p)
	}
}
