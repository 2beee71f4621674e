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

// benchBatch is a random fm-tiny batch with hard teacher labels.
func benchBatch(c Config, B int, seed uint64) Batch {
	r := rand.New(rand.NewPCG(seed, 9))
	b := Batch{Images: randSlice(r, B*c.Channels*c.ImageSize*c.ImageSize, 1)}
	for i := 0; i < B; i++ {
		b.Labels = append(b.Labels, r.IntN(c.Classes))
		b.TeacherHard = append(b.TeacherHard, r.IntN(c.Classes))
	}
	return b
}

// BenchmarkTrainStep is one fm-tiny training step at batch 128: forward,
// hard-distillation loss, backward, clipping and AdamW.
// scripts/bench_train_torch.py runs the same step in PyTorch.
func BenchmarkTrainStep(b *testing.B) {
	c := Config{}.WithDefaults()
	m, err := New(c, 0)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(m, shortRecipe(b, 128, 1000, "hard"))
	if err != nil {
		b.Fatal(err)
	}
	const B = 128
	batch := benchBatch(c, B, 1)
	if _, err := tr.TrainStep(batch); err != nil { // builds and compiles the graph
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.TrainStep(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "img/s")
	// CPU time per image: on a shared machine wall-clock img/s depends on
	// the neighbours; CPU-ms per image much less.
	b.ReportMetric((cpuSeconds()-cpu0)*1000/float64(B*b.N), "cpu-ms/img")
}
