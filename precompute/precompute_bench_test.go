package precompute_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/teacher"
)

// benchCache holds what the JPEG workload makes once (images, the exported teacher); never
// committed. DEITKD_BENCH_CACHE overrides it.
func benchCache() string {
	if d := os.Getenv("DEITKD_BENCH_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "deitkd-bench-precompute")
}

// workload is a dataset and a teacher for the benchmark.
type workload struct {
	name string
	opts precompute.Options // Model, Data and any preprocessing flags
}

// idxWorkload: Fashion-MNIST's 10,000 test images in IDX files with a 28×28 grey teacher:
// DEITKD_BENCH_IDX_MODEL if set, else the demo teacher where it exists, else tiny_gray.
func idxWorkload(b *testing.B) workload {
	data := "/usr/share/datasets/fashion-mnist/t10k"
	if _, err := os.Stat(data + "-images-idx3-ubyte.gz"); err != nil {
		if _, err := os.Stat(data + "-images-idx3-ubyte"); err != nil {
			b.Skipf("Fashion-MNIST not found at %s: %v", data, err)
		}
	}
	o := precompute.Options{Data: "idx:" + data}
	if env := os.Getenv("DEITKD_BENCH_IDX_MODEL"); env != "" {
		o.Model = env // a 28×28 teacher carrying its preprocessing
	} else if demo := filepath.Join(testdata, "teacher", "regnety_fmnist.onnx"); fileExists(demo) {
		o.Model = demo
	} else {
		o.Model = model("tiny_gray.onnx")
		o.Mean, o.Std = []float64{0.286}, []float64{0.353}
	}
	return workload{name: "idx-28px-" + strings.TrimSuffix(filepath.Base(o.Model), ".onnx"), opts: o}
}

// jpegWorkload: ImageNet-like JPEGs (about 500×375, scripts/make_jpegs.py) with RegNetY-400MF
// (random weights, 224×224, exported by teacher/export/export_torchvision.py), both made once
// into benchCache() with /usr/bin/python3 (PIL, numpy, torch, torchvision).
func jpegWorkload(b *testing.B, n int) workload {
	const python = "/usr/bin/python3"
	if !fileExists(python) {
		b.Skipf("%s not found: it makes the JPEGs and exports the RegNet teacher", python)
	}
	dir := benchCache()
	images := filepath.Join(dir, fmt.Sprintf("jpegs-%d", n))
	onnx := filepath.Join(dir, "regnet_y_400mf.onnx")
	if !fileExists(filepath.Join(images, ".done")) {
		os.RemoveAll(images)
		script := filepath.Join("..", "scripts", "make_jpegs.py")
		out, err := exec.Command(python, script, "--n", fmt.Sprint(n), "--classes", "8", "--out", images).CombinedOutput()
		if err != nil {
			b.Skipf("making JPEGs with %s failed: %v\n%s", script, err, out)
		}
		os.WriteFile(filepath.Join(images, ".done"), nil, 0o644)
	}
	if !fileExists(onnx) {
		script := filepath.Join("..", "teacher", "export", "export_torchvision.py")
		tmp := onnx + ".tmp.onnx"
		out, err := exec.Command(python, script, "--arch", "regnet_y_400mf", "--check-batch", "0", "--out", tmp).CombinedOutput()
		if err != nil {
			b.Skipf("exporting regnet_y_400mf with %s failed: %v\n%s", script, err, out)
		}
		if err := os.Rename(tmp, onnx); err != nil {
			b.Fatal(err)
		}
	}
	// The JPEG folders are n00000000.. and the teacher's classes ImageNet's: map folder i to
	// class i.
	ents, err := os.ReadDir(images)
	if err != nil {
		b.Fatal(err)
	}
	var m strings.Builder
	i := 0
	for _, e := range ents {
		if e.IsDir() {
			fmt.Fprintf(&m, "%s\t%d\n", e.Name(), i)
			i++
		}
	}
	classMap := filepath.Join(dir, fmt.Sprintf("classmap-%d.tsv", n))
	if err := os.WriteFile(classMap, []byte(m.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return workload{name: "jpeg-224px-regnet_y_400mf", opts: precompute.Options{Model: onnx, Data: images, ClassMapFile: classMap}}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// BenchmarkPrecompute measures the whole pipeline (decode, preprocess, teacher, store) in
// img/s against ONNX Runtime's bare Run on pre-made tensors of the same images, with the same
// model, batch and intra-op threads, and reports the ratio and the decode share: decoding's
// CPU per image (measured alone on one goroutine) over that plus the bare teacher's CPU per
// image. CPU times (getrusage) are also given for the whole pipeline: unlike img/s they hold
// on a machine shared with other work.
// Two thread settings: the default (the cores left after NumCPU decode workers, at least 1)
// and NumCPU threads, where decoding competes with inference for every core.
//
//	go test -run '^$' -bench Precompute -benchtime 1x -timeout 30m ./precompute/
//
// DEITKD_BENCH_JPEGS sets the number of JPEGs (default 384).
func BenchmarkPrecompute(b *testing.B) {
	nJPEG := 384
	if s := os.Getenv("DEITKD_BENCH_JPEGS"); s != "" {
		fmt.Sscan(s, &nJPEG)
	}
	// The default: NumCPU decode workers and the cores left after them, at least 1, for the
	// teacher; then as many teacher threads as cores, decoding sharing them.
	cores := runtime.NumCPU()
	threads := []int{max(1, cores-cores)}
	if cores > 1 {
		threads = append(threads, cores)
	}
	// Each workload is made inside its leaf benchmark, so -bench filtering never builds one
	// it will not run.
	workloads := []struct {
		name string
		make func(*testing.B) workload
	}{
		{"idx", idxWorkload},
		{"jpeg", func(b *testing.B) workload { return jpegWorkload(b, nJPEG) }},
	}
	for _, wl := range workloads {
		for _, th := range threads {
			b.Run(fmt.Sprintf("%s/threads=%d", wl.name, th), func(b *testing.B) {
				w := wl.make(b)
				b.Logf("workload %s: %s on %s", w.name, filepath.Base(w.opts.Model), w.opts.Data)
				benchWorkload(b, w, th)
			})
		}
	}
}

func benchWorkload(b *testing.B, w workload, threads int) {
	const batch = 64
	o := w.opts
	o.Batch, o.Threads, o.Workers = batch, threads, runtime.NumCPU()

	// The run's configuration, resolved the way the pipeline resolves it.
	probe := o
	probe.Out = filepath.Join(b.TempDir(), "probe")
	job, err := precompute.New(probe)
	if err != nil {
		b.Fatal(err)
	}
	cfg, n := job.Preprocess(), job.Metadata().Dataset.ImageCount
	job.Close()

	// Pre-made tensors: the first batch of images, decoded and preprocessed once.
	src, err := dataset.Open(o.Data)
	if err != nil {
		b.Fatal(err)
	}
	per := dataset.TensorLen(cfg.Channels, cfg.Crop)
	input := make([]float32, 0, batch*per)
	for i := range batch {
		x, _ := reference(b, src, i, 0, cfg, dataset.ViewConfig{})
		input = append(input, x...)
	}
	// bare is ONNX Runtime's own Run on the pre-made tensors, as many images as the dataset
	// has: img/s (wall) and CPU ms per image (the process's user+system time, which the load
	// of other processes does not inflate).
	bare := func() (rate, cpuMS float64) {
		m, err := teacher.Open(o.Model, teacher.Options{Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		if _, err := m.Run(input, batch); err != nil { // warm-up
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), cpuTime()
		for done := int64(0); done < n; done += batch {
			k := int(min(batch, n-done))
			if _, err := m.Run(input[:k*per], k); err != nil {
				b.Fatal(err)
			}
		}
		return float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds() * 1e3 / float64(n)
	}

	// Decoding and preprocessing alone, on one goroutine: CPU ms per image. With the bare
	// teacher's it gives the decode share of the work.
	decodeAlone := func() float64 {
		m := min(n, int64(4*batch))
		buf := make([]float32, per)
		cpu0 := cpuTime()
		for i := range int(m) {
			img, err := src.Load(i, cfg.Channels)
			if err != nil {
				continue
			}
			v, _ := dataset.ViewFor(img.Width, img.Height, i, 0, cfg, dataset.ViewConfig{})
			if err := dataset.Render(buf, img, v, cfg.Crop, cfg); err != nil {
				b.Fatal(err)
			}
		}
		return (cpuTime() - cpu0).Seconds() * 1e3 / float64(m)
	}

	var pipe, bareRate, share, decodeMS, bareMS, pipeMS float64
	iters := 0
	for b.Loop() {
		before, cpuBefore := bare()
		o.Out = filepath.Join(b.TempDir(), fmt.Sprint("labels", iters))
		job, err := precompute.New(o)
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		sum, err := job.Run(context.Background())
		pcpu := (cpuTime() - cpu0).Seconds() * 1e3 / float64(n)
		job.Close()
		if err != nil {
			b.Fatal(err)
		}
		if sum.Done != n {
			b.Fatalf("pipeline labelled %d of %d images", sum.Done, n)
		}
		after, cpuAfter := bare()
		dec := decodeAlone()
		iters++
		br, bcpu := (before+after)/2, (cpuBefore+cpuAfter)/2
		sh := dec / (dec + bcpu)
		pipe += sum.ImagesPerSecond()
		bareRate += br
		share += sh
		decodeMS += dec
		bareMS += bcpu
		pipeMS += pcpu
		b.Logf("%s threads=%d workers=%d batch=%d: pipeline %.1f img/s, bare Run %.1f then %.1f img/s: ratio %.3f. "+
			"CPU ms/img: decode alone %.3f, bare teacher %.3f (decode share %.1f%%), whole pipeline %.3f (overhead beyond both %.3f). "+
			"Wall in the pipeline, summed over goroutines: decode %.3f, teacher %.3f, store %.3f ms/img",
			w.name, threads, o.Workers, batch, sum.ImagesPerSecond(), before, after, sum.ImagesPerSecond()/br,
			dec, bcpu, 100*sh, pcpu, pcpu-dec-bcpu,
			sum.DecodeTime.Seconds()*1e3/float64(n), sum.TeacherTime.Seconds()*1e3/float64(n), sum.WriteTime.Seconds()*1e3/float64(n))
	}
	f := float64(iters)
	b.ReportMetric(pipe/f, "img/s")
	b.ReportMetric(bareRate/f, "bare-img/s")
	b.ReportMetric(pipe/bareRate, "ratio")
	b.ReportMetric(100*share/f, "decode-%")
	b.ReportMetric(decodeMS/f, "decode-cpu-ms/img")
	b.ReportMetric(bareMS/f, "bare-cpu-ms/img")
	b.ReportMetric(pipeMS/f, "pipe-cpu-ms/img")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
