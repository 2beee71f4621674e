package store

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deitkd/deitkd/schema"
)

// Benchmarks for K=1000 (ImageNet-1k) with 10 views per image, one default
// shard (50,000 rows) per iteration, so bytes/row includes a real footer.
// The logits come from synthRows: per image a noisy base vector (σ=1.5), a
// peak of +12 on the predicted class (wrong on a fifth of images), four
// look-alike classes, and independent noise per view (σ=0.7); ids look like
// ImageNet's and crops are whole-pixel boxes of a 500×375 image. Nothing
// repeats within a data page, so the compression figures are honest: 1,000
// distinct images are generated and reused with new indices and ids every
// 10,000 rows, one row group apart (pages compress independently).
//
//	make bench-store   (go test -run '^$' -bench . -benchtime 3x ./store/)

const benchClasses, benchViews, benchImages = 1000, 10, 1000

var benchConfigs = []struct {
	name  string
	mode  schema.Mode
	dtype schema.DType
	k     int
}{
	{"full-float16", schema.ModeFull, schema.Float16, 0},
	{"full-float32", schema.ModeFull, schema.Float32, 0},
	{"top10-float16", schema.ModeTopK, schema.Float16, 10},
}

var benchRowsCache [][]Row

func benchRows() [][]Row {
	if benchRowsCache == nil {
		for i := int64(0); i < benchImages; i++ {
			benchRowsCache = append(benchRowsCache, synthRows(7, i, benchClasses, benchViews))
		}
	}
	return benchRowsCache
}

// writeBenchStore writes one default shard of rows and returns its size.
func writeBenchStore(b *testing.B, dir string, md schema.Metadata) int64 {
	return writeBenchStoreT(b, dir, md)
}

func writeBenchStoreT(b testing.TB, dir string, md schema.Metadata) int64 {
	rows := benchRows()
	w, err := OpenWriter(dir, md, Options{})
	if err != nil {
		b.Fatal(err)
	}
	images := int64(DefaultShardRows / benchViews)
	for i := int64(0); i < images; i++ {
		for _, r := range rows[i%benchImages] {
			r.ImageIndex = i
			r.ImageID = fmt.Sprintf("train/%s_%d.JPEG", r.ImageID[6:25], 10000+i)
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	m := w.Manifest()
	if len(m.Shards) != 1 {
		b.Fatalf("%d shards, want 1", len(m.Shards))
	}
	return m.Shards[0].Bytes
}

// openBenchStore writes one default shard of the configuration, opens it and sets the
// benchmark's bytes per iteration to the shard's size.
func openBenchStore(b *testing.B, mode schema.Mode, dtype schema.DType, k int) *Reader {
	dir := b.TempDir()
	size := writeBenchStore(b, dir, benchMeta(mode, dtype, k))
	r, err := OpenReader(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	return r
}

func benchMeta(mode schema.Mode, dtype schema.DType, k int) schema.Metadata {
	return testMeta(mode, dtype, benchClasses, k, benchViews, DefaultShardRows/benchViews)
}

func BenchmarkWrite(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(c.name, func(b *testing.B) {
			md := benchMeta(c.mode, c.dtype, c.k)
			benchRows()
			var size int64
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				size = writeBenchStore(b, dir, md)
			}
			b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/(cpuSeconds()-cpu0), "rows/cpu-s")
			b.ReportMetric(float64(size)/DefaultShardRows, "bytes/row")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(c.name, func(b *testing.B) {
			r := openBenchStore(b, c.mode, c.dtype, c.k)
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				var n int64
				err := r.Scan(context.Background(), nil, func(rec arrow.RecordBatch) error {
					n += rec.NumRows()
					return nil
				})
				if err != nil || n != DefaultShardRows {
					b.Fatalf("read %d rows: %v", n, err)
				}
			}
			b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/(cpuSeconds()-cpu0), "rows/cpu-s")
		})
	}
}

// BenchmarkLoadTargets measures building the trainer's in-memory index.
func BenchmarkLoadTargets(b *testing.B) {
	dir := b.TempDir()
	writeBenchStore(b, dir, benchMeta(schema.ModeTopK, schema.Float16, 10))
	r, err := OpenReader(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.LoadTargets(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// cpuSeconds is the process's user+system CPU time. rows/cpu-s next to
// rows/s tells apart a slow reader from a busy machine (the development
// machine is shared); on an idle machine with one busy core they agree.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkCheckSums measures what train pays to check a store's checksums when it opens it:
// one read of every shard through sha256 (the files in the page cache, as after precompute).
func BenchmarkCheckSums(b *testing.B) {
	for _, c := range benchConfigs {
		b.Run(c.name, func(b *testing.B) {
			r := openBenchStore(b, c.mode, c.dtype, c.k)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := r.CheckSums(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(DefaultShardRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(r.Manifest.Shards[0].Bytes)/DefaultShardRows, "bytes/row")
		})
	}
}
