package student

import (
	"math/rand/v2"
	"syscall"
	"testing"
)

// cpuSeconds is the process's user and system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// benchBatch is a random batch of c's images with hard teacher labels.
func benchBatch(c Config, B int, seed uint64) Batch {
	r := rand.New(rand.NewPCG(seed, 9))
	b := Batch{Images: randSlice(r, B*c.Channels*c.ImageSize*c.ImageSize, 1)}
	for i := 0; i < B; i++ {
		b.Labels = append(b.Labels, r.IntN(c.Classes))
		b.TeacherHard = append(b.TeacherHard, r.IntN(c.Classes))
	}
	return b
}

// benchShapes are the models of BenchmarkTrainStep, each with its batch; scripts/bench_train_torch.py
// --shape builds the same ones in PyTorch.
var benchShapes = []struct {
	name  string
	cfg   Config
	batch int
}{
	{"fm-tiny", Config{}.WithDefaults(), 128},
	// DeiT-tiny's shape (D 192, 12 blocks, 3 heads, MLP×4, patch 16) on 3×96×96 inputs, 10 classes.
	{"deit-tiny-96", Config{ImageSize: 96, Channels: 3, Patch: 16, Dim: 192, Depth: 12, Heads: 3, MLPRatio: 4, Classes: 10}.WithDefaults(), 64},
}

// BenchmarkTrainStep is one training step of each bench shape: forward, hard-distillation loss,
// backward, clipping and AdamW. scripts/bench_train_torch.py runs the same step in PyTorch, and
// scripts/bench_train.sh (make bench-train) runs both, alternating, one shape per process so that
// the peak RSS reported is the shape's own.
func BenchmarkTrainStep(b *testing.B) {
	for _, s := range benchShapes {
		// One model per shape, however often the testing package calls the function (first
		// with b.N 1): the peak RSS is then one model's, as in the PyTorch process.
		var tr *Trainer
		var batch Batch
		b.Run(s.name, func(b *testing.B) {
			if tr == nil {
				m, err := New(s.cfg, 0)
				if err != nil {
					b.Fatal(err)
				}
				if tr, err = NewTrainer(m, shortRecipe(b, s.batch, 1000, "hard")); err != nil {
					b.Fatal(err)
				}
				batch = benchBatch(s.cfg, s.batch, 1)
				if _, err := tr.TrainStep(batch); err != nil { // builds and compiles the graph
					b.Fatal(err)
				}
			}
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.TrainStep(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.batch*b.N)/b.Elapsed().Seconds(), "img/s")
			// CPU time per image: on a shared machine wall-clock img/s depends on
			// the neighbours; CPU-ms per image much less.
			b.ReportMetric((cpuSeconds()-cpu0)*1000/float64(s.batch*b.N), "cpu-ms/img")
			b.ReportMetric(maxRSSMiB(), "maxrss-MiB")
			b.ReportMetric(trainFLOPs(s.cfg)/1e6, "MFLOP/img")
		})
	}
}

// maxRSSMiB is the process's peak resident set size so far, in MiB.
func maxRSSMiB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

// trainFLOPs is a training step's floating-point work per image: 3× the forward's matrix
// products (the backward makes two products of each forward one's size: the input's and
// the weight's gradient), 2 FLOP per multiply-add: the patch embedding, per block qkv,
// q·kᵀ, attention·v, proj, fc1 and fc2, and the heads on one token each. The
// elementwise work (LayerNorm, GELU, softmax, AdamW) is left out, as in the usual
// 6·params·tokens estimate.
func trainFLOPs(c Config) float64 {
	c = c.WithDefaults()
	N, T, D, Hd := c.Patches(), c.Tokens(), c.Dim, c.Hidden()
	patch := N * c.Channels * c.Patch * c.Patch * D
	block := T*D*3*D + // qkv
		T*T*D + // q·kᵀ, all heads
		T*T*D + // attention·v
		T*D*D + // proj
		2*T*D*Hd // fc1, fc2
	heads := (T - N) * D * c.Classes // cls and dist
	return 3 * 2 * float64(patch+c.Depth*block+heads)
}

// TestTrainFLOPs: the formula against the products counted by hand for the bench shapes
// (fm-tiny: patch 49·16·64, per block 51·64·192 + 2·51²·64 + 51·64² + 2·51·64·256, heads
// 2·64·10; DeiT-tiny at 96 px likewise with N 36, T 38, D 192, hidden 768, K 768).
func TestTrainFLOPs(t *testing.T) {
	for _, c := range []struct {
		shape int
		want  float64
	}{{0, 68_461_056}, {1, 1_282_116_096}} {
		s := benchShapes[c.shape]
		if got := trainFLOPs(s.cfg); got != c.want {
			t.Errorf("%s: %.0f FLOP per image, want %.0f", s.name, got, c.want)
		}
	}
}
