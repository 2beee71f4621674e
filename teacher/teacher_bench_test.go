package teacher

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// BenchmarkRun is ONNX Runtime's bare speed on pre-made tensors: the ceiling the precompute
// pipeline is measured against (same model, batch and threads). DEITKD_BENCH_THREADS sets the
// intra-op threads (default 0: ONNX Runtime's own choice).
//
//	go test -run '^$' -bench Run -benchtime 20x ./teacher/
func BenchmarkRun(b *testing.B) {
	threads := 0
	if s := os.Getenv("DEITKD_BENCH_THREADS"); s != "" {
		var err error
		if threads, err = strconv.Atoi(s); err != nil {
			b.Fatalf("DEITKD_BENCH_THREADS=%q: %v", s, err)
		}
	}
	for _, bc := range []struct {
		model string
		batch int
	}{
		{"tiny_regnet.onnx", 64},
		{"tiny_regnet_fixed4.onnx", 64}, // 16 runs of 4: the cost of a small fixed batch
		{"tiny_gray.onnx", 64},
	} {
		b.Run(fmt.Sprintf("%s/batch=%d", bc.model, bc.batch), func(b *testing.B) {
			m := open(b, bc.model, Options{Threads: threads})
			per := m.Info().ImageSize()
			rng := rand.New(rand.NewPCG(1, 2))
			input := make([]float32, bc.batch*per)
			for i := range input {
				input[i] = float32(rng.NormFloat64())
			}
			if _, err := m.Run(input, bc.batch); err != nil { // warm-up: first-run allocations
				b.Fatal(err)
			}
			b.SetBytes(int64(4 * len(input)))
			runs := 0
			for b.Loop() {
				if _, err := m.Run(input, bc.batch); err != nil {
					b.Fatal(err)
				}
				runs++
			}
			b.ReportMetric(float64(runs*bc.batch)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
