package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deitkd/deitkd/internal/atomicfile"
)

// Failure is an image that could not be labelled.
type Failure struct {
	ImageIndex int64
	ImageID    string
	Stage      string // e.g. "decode", "teacher"
	Err        string
}

var failureSchema = arrow.NewSchema([]arrow.Field{
	{Name: "image_id", Type: arrow.BinaryTypes.String},
	{Name: "image_index", Type: arrow.PrimitiveTypes.Int64},
	{Name: "stage", Type: arrow.BinaryTypes.String},
	{Name: "error", Type: arrow.BinaryTypes.String},
}, nil)

// writeFailures replaces dir/rel with fs atomically and returns its entry.
func writeFailures(dir, rel string, fs []Failure, mem memory.Allocator) (FailureEntry, error) {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	b := array.NewRecordBuilder(mem, failureSchema)
	defer b.Release()
	for _, f := range fs {
		b.Field(0).(*array.StringBuilder).Append(f.ImageID)
		b.Field(1).(*array.Int64Builder).Append(f.ImageIndex)
		b.Field(2).(*array.StringBuilder).Append(f.Stage)
		b.Field(3).(*array.StringBuilder).Append(f.Err)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(failureSchema, &buf,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithAllocator(mem)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err == nil {
		err = w.Write(rec)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return FailureEntry{}, fmt.Errorf("write failure log %s: %w", path, err)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return FailureEntry{}, fmt.Errorf("write failure log %s: %w", path, err)
		}
		if err := atomicfile.SyncDir(dir); err != nil { // make the new folder's entry durable
			return FailureEntry{}, fmt.Errorf("write failure log %s: %w", path, err)
		}
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return FailureEntry{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return FailureEntry{File: rel, Rows: int64(len(fs)), Bytes: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:])}, nil
}

// readFailures reads a failure log, checking it against its entry.
func readFailures(dir string, e FailureEntry, mem memory.Allocator) ([]Failure, error) {
	path := filepath.Join(dir, filepath.FromSlash(e.File))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read failure log %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != e.SHA256 {
		return nil, fmt.Errorf("failure log %s: %w: sha256 %x, manifest says %s", path, ErrChecksum, sum, e.SHA256)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failure log %s: %w: %v", path, ErrCorrupt, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, fmt.Errorf("failure log %s: %w: %v", path, ErrCorrupt, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("failure log %s: %w: %v", path, ErrCorrupt, err)
	}
	defer tbl.Release()
	if !sameFields(tbl.Schema(), failureSchema) {
		return nil, fmt.Errorf("failure log %s: %w: schema %s", path, ErrContent, tbl.Schema())
	}
	tr := array.NewTableReader(tbl, -1)
	defer tr.Release()
	var out []Failure
	for tr.Next() {
		rec := tr.RecordBatch()
		ids := rec.Column(0).(*array.String)
		idx := rec.Column(1).(*array.Int64)
		stage := rec.Column(2).(*array.String)
		msg := rec.Column(3).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, Failure{ImageIndex: idx.Value(i), ImageID: ids.Value(i), Stage: stage.Value(i), Err: msg.Value(i)})
		}
	}
	if int64(len(out)) != e.Rows {
		return nil, fmt.Errorf("failure log %s: %w: %d rows, manifest says %d", path, ErrContent, len(out), e.Rows)
	}
	return out, nil
}

// sameFields compares names and types, not field metadata (Parquet adds
// field ids).
func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.Fields() {
		if a.Field(i).Name != b.Field(i).Name || !arrow.TypeEqual(a.Field(i).Type, b.Field(i).Type) {
			return false
		}
	}
	return true
}
