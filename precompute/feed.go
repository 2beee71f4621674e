package precompute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/deitkd/deitkd/dataset"
)

// FeedOptions configures Feed, precompute --teacher-off: the options of a run that shape what
// the teacher would be fed, and nothing of the teacher or the store.
type FeedOptions struct {
	Data       string   // as Options.Data
	Extensions []string // as Options.Extensions
	Batch      int      // images a batch; 0: 64
	Workers    int      // decode/preprocess goroutines; 0: runtime.NumCPU()
	Limit      int      // feed only images with index < Limit; 0: all

	// The eval transform. Crop is required (there is no model input to take it from); Resize
	// 0 is Crop; Mean and Std nil are ImageNet's.
	Resize, Crop  int
	Interpolation string
	Mean, Std     []float64
	// Draft decodes large JPEGs at reduced scale (dataset.Config.Draft): faster, other pixels.
	Draft bool
	// EXIFTranspose turns images upright for their EXIF orientation (dataset.Config.EXIFTranspose).
	EXIFTranspose bool
}

// FeedSummary is what Feed did.
type FeedSummary struct {
	Images, Failed int
	Elapsed        time.Duration
	// CPU is this process's CPU time (user + system) over the feed, where the platform says
	// it (0 elsewhere): per image, it is less disturbed by other load than img/s.
	CPU      time.Duration
	FirstErr error // the first per-image failure, if any
}

// ImagesPerSecond is the feed's throughput over every image, failed ones included.
func (s FeedSummary) ImagesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Images) / s.Elapsed.Seconds()
}

// Write prints the summary: one line a script can read (feed_img_per_s, cpu_ms_per_img), and
// the first failure.
func (s FeedSummary) Write(w io.Writer) {
	cpuPer := 0.0
	if s.Images > 0 {
		cpuPer = float64(s.CPU.Microseconds()) / 1000 / float64(s.Images)
	}
	fmt.Fprintf(w, "teacher off: fed %d images (%d failed) in %.2f s: feed_img_per_s %.1f cpu_ms_per_img %.3f\n",
		s.Images, s.Failed, s.Elapsed.Seconds(), s.ImagesPerSecond(), cpuPer)
	if s.FirstErr != nil {
		fmt.Fprintf(w, "first failure: %v\n", s.FirstErr)
	}
}

// Feed runs stage one's labelling pipeline with the teacher stage taken out (precompute
// --teacher-off): listing the source, the reader, the decoders rendering view 0
// (Resize/CenterCrop/normalise), the batcher packing teacher batches in order — the code a
// labelling run runs (pipeline.run) — and, in place of the teacher and the store, a sink that
// counts; it reports the throughput, so feeding capacity can be measured on any machine.
// Nothing is written. Per-image failures are counted, not fatal.
func Feed(ctx context.Context, o FeedOptions) (FeedSummary, error) {
	var sum FeedSummary
	if o.Data == "" {
		return sum, optionError(fmt.Errorf("%w: a dataset is required", ErrOptions), "Data")
	}
	if o.Crop <= 0 {
		return sum, optionError(fmt.Errorf("%w: the teacher-off feed needs a crop (there is no model to take it from)", ErrOptions), "Crop")
	}
	if o.Batch < 0 || o.Workers < 0 || o.Limit < 0 {
		return sum, fmt.Errorf("%w: batch %d, workers %d, limit %d: want ≥ 0", ErrOptions, o.Batch, o.Workers, o.Limit)
	}
	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	cfg := dataset.Config{Resize: o.Resize, Crop: o.Crop, Interpolation: o.Interpolation, Draft: o.Draft, EXIFTranspose: o.EXIFTranspose}
	if o.Mean != nil || o.Std != nil {
		cfg.Mean, cfg.Std = o.Mean, o.Std
	}
	cfg, err := cfg.Defaults()
	if err != nil {
		return sum, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	exts, err := checkExtensions(o.Data, o.Extensions)
	if err != nil {
		return sum, err
	}
	var stage atomic.Value
	stage.Store("listing the dataset " + o.Data)
	src, err := interruptible(ctx, &stage, func() (dataset.Source, error) {
		return dataset.OpenWith(o.Data, dataset.Options{Extensions: exts})
	}, func(dataset.Source) {})
	if err != nil {
		return sum, err
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	// A job of view 0 alone, with neither teacher nor store: read yields every image below
	// the limit, teach hands batches on untouched.
	j := &Job{opts: Options{Batch: o.Batch, Workers: o.Workers, Views: 1, Limit: o.Limit}, src: src, cfg: cfg}
	p := j.newPipeline()
	cpu0 := processCPU()
	start := time.Now()
	err = p.run(ctx, func(_ context.Context, in <-chan *batch) error {
		for b := range in { // the teacher stage closes it, at the end or when the run stops
			for _, it := range b.items {
				sum.Images++
				if it.err != nil {
					sum.Failed++
					if sum.FirstErr == nil {
						sum.FirstErr = it.err
					}
				}
			}
		}
		return nil
	})
	sum.Elapsed = time.Since(start)
	if cpu1 := processCPU(); cpu0 > 0 {
		sum.CPU = cpu1 - cpu0
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w after %d images", ErrInterrupted, sum.Images)
	}
	return sum, err
}
