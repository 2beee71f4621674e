package traindata_test

import (
	"context"
	"os"
	"testing"

	"github.com/deitkd/deitkd/traindata"
)

// fashionMNIST is where `make setup` puts Fashion-MNIST; the benchmark falls back to the
// five test images without it.
const fashionMNIST = "/usr/share/datasets/fashion-mnist/train"

// BenchmarkEpoch measures the data path alone: an epoch of 128-row batches of a 4-view store,
// replayed views rendered at 28×28 with their soft targets, images decoded once (the cache is
// warm after the first epoch). The student's step at fm-tiny takes about 0.3 s per batch of
// 128, so the data path must stay far above ~400 rows/s per worker to never be what training
// waits for.
func BenchmarkEpoch(b *testing.B) {
	spec, limit := idxSpec("train"), 0
	if _, err := os.Stat(fashionMNIST + "-images-idx3-ubyte.gz"); err == nil {
		spec, limit = "idx:"+fashionMNIST, 4096
	}
	dir := makeStoreLimit(b, spec, 4, limit)
	for _, workers := range []int{1, 2} {
		s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: spec, Limit: limit, Batch: 128, Workers: workers, Probs: true})
		if err != nil {
			b.Fatal(err)
		}
		name := "workers=1"
		if workers == 2 {
			name = "workers=2"
		}
		b.Run(name, func(b *testing.B) {
			rows := 0
			for i := 0; b.Loop(); i++ {
				err := s.Epoch(context.Background(), i, 0, func(bt *traindata.Batch) error { rows += bt.Len(); return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
