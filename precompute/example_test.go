package precompute_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/deitkd/deitkd/precompute"
)

// Label MNIST-format images with a 28×28 teacher that carries no preprocessing metadata (so
// mean and std are given), then rerun: everything is already present.
func Example() {
	dir, err := os.MkdirTemp("", "labels")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts := precompute.Options{
		Model: "../testdata/models/tiny_gray.onnx",
		Data:  "idx:../testdata/idx/t10k",
		Out:   filepath.Join(dir, "labels"),
		Mean:  []float64{0.286}, Std: []float64{0.353},
		Workers: 1, Threads: 1,
	}
	for range 2 {
		job, err := precompute.New(opts)
		if err != nil {
			log.Fatal(err)
		}
		sum, err := job.Run(context.Background())
		job.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("labelled %d, failed %d, already present %d; store: %d rows in %d shard(s)\n",
			sum.Done, sum.Failed, sum.Present, sum.Manifest.Rows, len(sum.Manifest.Shards))
	}
	// Output:
	// labelled 3, failed 0, already present 0; store: 3 rows in 1 shard(s)
	// labelled 0, failed 0, already present 3; store: 3 rows in 1 shard(s)
}
