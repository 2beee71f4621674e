package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/schema"
)

// parquetProps are the Parquet settings of every shard. They were chosen by
// BenchmarkWrite on K=1000 synthetic logits (see store_bench_test.go):
//   - zstd: the best size for the speed among the codecs every reader has;
//   - no dictionary for logits, crops and logsumexp: float values rarely
//     repeat, so a dictionary only costs a page and a fallback; nor for the
//     small integer columns, where plain + zstd measured as small;
//   - a dictionary for image_id (each repeats once per view) and for
//     topk_index (at most K distinct classes, bit-packed indices): 1.5 of
//     the 47 bytes per row at top-10 float16;
//   - zstd level 3: level 9 saved under 1 byte per row at top-10 for a
//     slower writer;
//   - BYTE_STREAM_SPLIT for float32 values: it puts the sign/exponent
//     bytes of all values together, which zstd then squeezes (3446 instead
//     of 3717 bytes per row at full float32);
//   - DELTA_BINARY_PACKED for image_index, which rises by 0 or 1 per row.
func parquetProps(md schema.Metadata, rowGroupRows int, mem memory.Allocator) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithAllocator(mem),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(zstdLevel),
		parquet.WithMaxRowGroupLength(int64(rowGroupRows)),
		parquet.WithCreatedBy("deitkd " + md.CreatedBy),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor(schema.ColImageID, true),
		parquet.WithDictionaryFor(schema.ColTopKIndex+".list.element", true),

		parquet.WithEncodingFor(schema.ColImageIndex, parquet.Encodings.DeltaBinaryPacked),
		parquet.WithStats(false),
		parquet.WithStatsFor(schema.ColImageIndex, true),
		parquet.WithStatsFor(schema.ColView, true),
		parquet.WithStatsFor(schema.ColLabel, true),
	}
	opts = append(opts, parquet.WithEncodingFor(schema.ColCrop+".list.element", parquet.Encodings.ByteStreamSplit))
	if md.Store.DType == schema.Float32 {
		// Not for float16: DuckDB (1.5) reads BYTE_STREAM_SPLIT only for
		// FLOAT and DOUBLE, and float16 is a 2-byte FIXED_LEN_BYTE_ARRAY.
		for _, c := range []string{schema.ColTeacherLogits, schema.ColTopKLogit} {
			opts = append(opts, parquet.WithEncodingFor(c+".list.element", parquet.Encodings.ByteStreamSplit))
		}
	}
	opts = append(opts, parquet.WithEncodingFor(schema.ColLogSumExp, parquet.Encodings.ByteStreamSplit))
	return parquet.NewWriterProperties(opts...)
}

// zstdLevel trades write speed for size; see parquetProps.
var zstdLevel = 3

// hashWriter counts and hashes what passes through it on its way to w. It is
// not an io.Closer, so the Parquet writer cannot close the file under us.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// shardFile is a shard being written under its temporary name.
type shardFile struct {
	final, tmp string
	f          *os.File
	bw         *bufio.Writer
	hw         *hashWriter
	pq         *pqarrow.FileWriter
	ipc        *ipc.FileWriter
}

// createShardFile starts writing dir/name under the temporary name
// dir/.name.tmp, which no *.parquet glob matches.
func createShardFile(dir, name string, sch *arrow.Schema, md schema.Metadata, format Format, rowGroupRows int, mem memory.Allocator) (*shardFile, error) {
	sf := &shardFile{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".tmp")}
	f, err := os.OpenFile(sf.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create shard %s: %w", sf.tmp, err)
	}
	sf.f = f
	sf.bw = bufio.NewWriterSize(f, 1<<20)
	sf.hw = &hashWriter{w: sf.bw, h: sha256.New()}
	switch format {
	case FormatArrow:
		sf.ipc, err = ipc.NewFileWriter(sf.hw, ipc.WithSchema(sch), ipc.WithAllocator(mem))
	default:
		sf.pq, err = pqarrow.NewFileWriter(sch, sf.hw, parquetProps(md, rowGroupRows, mem),
			pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	}
	if err != nil {
		f.Close()
		os.Remove(sf.tmp)
		return nil, fmt.Errorf("create shard %s: %w", sf.tmp, err)
	}
	return sf, nil
}

func (sf *shardFile) write(rec arrow.RecordBatch) error {
	var err error
	if sf.pq != nil {
		err = sf.pq.Write(rec)
	} else {
		err = sf.ipc.Write(rec)
	}
	if err != nil {
		return fmt.Errorf("write shard %s: %w", sf.tmp, err)
	}
	return nil
}

// finish closes the file, makes it durable, and renames it to its final
// name. It returns the size and sha256 of what was written.
func (sf *shardFile) finish() (int64, string, error) {
	var err error
	if sf.pq != nil {
		err = sf.pq.Close()
	} else {
		err = sf.ipc.Close()
	}
	if err == nil {
		err = sf.bw.Flush()
	}
	if err == nil {
		err = sf.f.Sync()
	}
	if cerr := sf.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(sf.tmp, sf.final)
	}
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(sf.final))
	}
	if err != nil {
		os.Remove(sf.tmp)
		return 0, "", fmt.Errorf("finish shard %s: %w", sf.final, err)
	}
	return sf.hw.n, hex.EncodeToString(sf.hw.h.Sum(nil)), nil
}

// abort drops the temporary file.
func (sf *shardFile) abort() {
	sf.f.Close()
	os.Remove(sf.tmp)
}

// rowBuilder accumulates rows as Arrow arrays of the store's schema, each column through its
// entry in columns (columns.go), found by name.
type rowBuilder struct {
	md   schema.Metadata
	rb   *array.RecordBuilder
	rows int
	cols []column        // the entry of each field of the schema, in field order
	d    derived         // scratch: what is derived from the row being added
	bs   []array.Builder // the builder of each field
}

func newRowBuilder(sch *arrow.Schema, md schema.Metadata, mem memory.Allocator) *rowBuilder {
	rb := array.NewRecordBuilder(mem, sch)
	b := &rowBuilder{md: md, rb: rb}
	for i, f := range sch.Fields() {
		c, ok := columnNamed(f.Name)
		if !ok { // schema.NewSchema and columns disagree: a programming error, caught by every test
			panic(fmt.Sprintf("store: column %q of schema version %d has no entry in columns", f.Name, md.SchemaVersion))
		}
		b.cols = append(b.cols, c)
		b.bs = append(b.bs, rb.Field(i))
	}
	if md.Store.Mode == schema.ModeTopK {
		b.d.topk = make([]int32, md.Store.K)
		b.d.vals = make([]float32, md.Store.K)
	}
	return b
}

// append adds r, deriving teacher_hard and, in mode topk, the top-k and
// logsumexp. r has passed checkRow. In a float16 store a logit to be stored
// that float16 cannot hold (|v| ≥ 65520, which would round to Inf) is an
// error wrapping ErrRow, and then nothing of r is added.
func (b *rowBuilder) append(r *Row) error {
	d := &b.d
	d.hard, d.lse = argmaxLSE(r.Logits)
	if b.md.Store.Mode == schema.ModeTopK {
		topK(r.Logits, d.topk)
		for i, c := range d.topk {
			d.vals[i] = r.Logits[c]
		}
	} else {
		d.vals = r.Logits
	}
	if b.md.Store.DType == schema.Float16 {
		// Convert first: a row is added whole or not at all.
		d.f16 = d.f16[:0]
		for i, v := range d.vals {
			h, ok := half.FromFloat32(v)
			if !ok {
				class, col := i, schema.ColTeacherLogits
				if b.md.Store.Mode == schema.ModeTopK {
					class, col = int(d.topk[i]), schema.ColTopKLogit
				}
				return fmt.Errorf("%w: logit %d is %v, outside float16's range (%s[%d]; largest float16 %d, |x| ≥ %d would be stored as Inf)",
					ErrRow, class, v, col, i, half.MaxFloat16, half.OverflowThreshold)
			}
			d.f16 = append(d.f16, float16.FromBits(h))
		}
	}
	for i, c := range b.cols {
		c.put(b.bs[i], r, d)
	}
	b.rows++
	return nil
}

// record returns the rows so far as a record and resets the builder.
func (b *rowBuilder) record() arrow.RecordBatch {
	b.rows = 0
	return b.rb.NewRecordBatch()
}

func (b *rowBuilder) release() { b.rb.Release() }
