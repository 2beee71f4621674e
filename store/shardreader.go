package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readBatchRows is the record size a Parquet shard is read in: a row group
// of the default size in one record.
const readBatchRows = DefaultRowGroupRows

// shardReader reads one shard file, Parquet or Arrow IPC.
type shardReader struct {
	path   string
	format Format
	f      *os.File
	schema *arrow.Schema
	rows   int64
	pq     *pqarrow.FileReader
	pf     *file.Reader
	ipc    *ipc.FileReader
}

func openShard(path string, format Format, mem memory.Allocator) (sr *shardReader, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w: %v", path, ErrMissingShard, err)
	}
	sr = &shardReader{path: path, format: format, f: f}
	opened := sr
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, format, fmt.Errorf("decoding it failed (%v)", r))
		}
		if err != nil {
			opened.Close()
			sr = nil
		}
	}()
	if format == FormatArrow {
		sr.ipc, err = ipc.NewFileReader(f, ipc.WithAllocator(mem))
		if err != nil {
			return nil, damaged(path, format, err)
		}
		sr.schema = sr.ipc.Schema()
		for i := 0; i < sr.ipc.NumRecords(); i++ {
			rec, err := sr.ipc.RecordBatch(i)
			if err != nil {
				return nil, damaged(path, format, err)
			}
			sr.rows += rec.NumRows()
		}
		return sr, nil
	}
	sr.pf, err = file.NewParquetReader(f)
	if err != nil {
		return nil, damaged(path, format, err)
	}
	sr.pq, err = pqarrow.NewFileReader(sr.pf, pqarrow.ArrowReadProperties{BatchSize: readBatchRows}, mem)
	if err != nil {
		return nil, damaged(path, format, err)
	}
	sr.schema, err = sr.pq.Schema()
	if err != nil {
		return nil, damaged(path, format, err)
	}
	sr.rows = sr.pf.NumRows()
	return sr, nil
}

func (sr *shardReader) Close() error {
	if sr.pf != nil {
		sr.pf.Close()
	}
	if sr.ipc != nil {
		sr.ipc.Close()
	}
	return sr.f.Close()
}

// scan calls fn with records holding the columns cols (field indices; nil:
// all). Records are released after fn returns; fn must Retain what it keeps.
func (sr *shardReader) scan(ctx context.Context, cols []int, fn func(arrow.RecordBatch) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(sr.path, sr.format, fmt.Errorf("reading it failed (%v)", r))
		}
	}()
	if cols == nil {
		cols = make([]int, sr.schema.NumFields())
		for i := range cols {
			cols[i] = i
		}
	}
	if sr.ipc != nil {
		fields := make([]arrow.Field, len(cols))
		for j, c := range cols {
			fields[j] = sr.schema.Field(c)
		}
		meta := sr.schema.Metadata()
		sub := arrow.NewSchema(fields, &meta)
		for i := 0; i < sr.ipc.NumRecords(); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := sr.ipc.RecordBatch(i)
			if err != nil {
				return damaged(sr.path, sr.format, err)
			}
			arrs := make([]arrow.Array, len(cols))
			for j, c := range cols {
				arrs[j] = rec.Column(c)
			}
			proj := array.NewRecordBatch(sub, arrs, rec.NumRows())
			err = fn(proj)
			proj.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}
	// GetRecordReader takes Parquet leaf columns: a version-2 randaugment column (a list of
	// structs of two) has two leaves, every other column one.
	rr, err := sr.pq.GetRecordReader(ctx, leafColumns(sr.schema, cols), nil)
	if err != nil {
		return damaged(sr.path, sr.format, err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return damaged(sr.path, sr.format, err)
	}
	return nil
}

// damaged is the error for a shard file that its decoder cannot read,
// wrapping ErrCorrupt and naming the file. arrow-go (and the flatbuffers
// code under its Arrow IPC reader) trusts the offsets and lengths inside a
// file, so damaged bytes of the right size can make it index out of range
// and panic rather than return an error; openShard and scan recover that
// panic into this error, so that the message says the file is damaged
// instead of showing a bare runtime error.
func damaged(path string, f Format, cause error) error {
	kind := "Parquet"
	if f == FormatArrow {
		kind = "Arrow IPC"
	}
	return fmt.Errorf("shard %s: %w: damaged %s file: %v", path, ErrCorrupt, kind, cause)
}

// leafColumns is the Parquet leaf columns of the fields cols of s, in order: each field has
// as many leaves as it has primitive values a row (a struct one per field, a list its
// element's).
func leafColumns(s *arrow.Schema, cols []int) []int {
	start := make([]int, s.NumFields()+1)
	for i, f := range s.Fields() {
		start[i+1] = start[i] + leaves(f.Type)
	}
	var out []int
	for _, c := range cols {
		for l := start[c]; l < start[c+1]; l++ {
			out = append(out, l)
		}
	}
	return out
}

func leaves(t arrow.DataType) int {
	switch t := t.(type) {
	case *arrow.StructType:
		n := 0
		for _, f := range t.Fields() {
			n += leaves(f.Type)
		}
		return n
	case arrow.ListLikeType:
		return leaves(t.Elem())
	}
	return 1
}
