package student

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// BenchmarkSgemm measures the products of an fm-tiny step at batch 128
// (M = 128·51 token rows) through sgemm, in GFLOP/s, and a 2048² product: the
// machine's limit for the speed-of-light table of scripts/bench_train.sh (with -cpu 2
// sgemm splits it into one band per core).
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ m, n, k int }{
		{2048, 2048, 2048},
		{6528, 192, 64}, // qkv
		{6528, 256, 64}, // fc1
		{6528, 64, 256}, // fc2
		{64, 256, 6528}, // fc2 weight gradient
		{51, 51, 16},    // one head's q·kᵀ
	} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			a, w, c := randSlice(r, s.m*s.k, 1), randSlice(r, s.k*s.n, 1), make([]float32, s.m*s.n)
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				sgemm(noT, noT, s.m, s.n, s.k, 1, a, s.k, w, s.n, 0, c, s.n)
			}
			flop := 2 * float64(s.m*s.n*s.k) * float64(b.N)
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			// per second of CPU time: what one core does while it runs, less disturbed
			// than GFLOP/s by other processes on a shared machine
			b.ReportMetric(flop/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
		})
	}
}

// BenchmarkAttention is the forward and backward of one fm-tiny block's
// attention at batch 128.
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	B, T, C, NH := 128, 51, 64, 4
	qkv := randSlice(r, B*T*3*C, 1)
	out, att, dout, dqkv := make([]float32, B*T*C), make([]float32, B*NH*T*T), randSlice(r, B*T*C, 1), make([]float32, len(qkv))
	for i := 0; i < b.N; i++ {
		attentionForward(out, att, qkv, B, T, C, NH)
		attentionBackward(dqkv, dout, qkv, att, B, T, C, NH)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
}

// BenchmarkGELU is the forward (with the cached derivative) and backward of
// one fm-tiny MLP activation at batch 128.
func BenchmarkGELU(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n := 128 * 51 * 256
	x, out, g, dout := randSlice(r, n, 1), make([]float32, n), make([]float32, n), randSlice(r, n, 1)
	for i := 0; i < b.N; i++ {
		geluForwardGrad(out, g, x, n)
		for j := range dout {
			out[j] = dout[j] * g[j]
		}
	}
}

// BenchmarkLayerNorm is the forward and the backward (every gradient) of one fm-tiny
// LayerNorm at batch 128, with the C kernels and with the Go reference.
func BenchmarkLayerNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	M, C := 128*51, 64
	in := [][]float32{randSlice(r, M*C, 1), randSlice(r, C, 1), randSlice(r, C, 1)}
	out, dout := make([]float32, M*C), randSlice(r, M*C, 1)
	din := [][]float32{make([]float32, M*C), make([]float32, C), make([]float32, C)}
	defer func() { useC = haveCKernels }()
	for _, c := range []bool{false, true} {
		if c && !haveCKernels {
			continue
		}
		b.Run(map[bool]string{false: "go", true: "c"}[c], func(b *testing.B) {
			useC = c
			k := &lnKernel{eps: lnEps}
			if _, err := k.outShape([]tensor.Shape{{M, C}, {C}, {C}}); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				k.forward(out, in)
				for j := range din {
					k.backward(j, din[j], in, out, dout)
				}
			}
		})
	}
}
