package dataset

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/deitkd/deitkd/internal/ordered"
)

// LoadImage is src.Load(i, cfg.Channels), except that with cfg.Draft a JPEG of a folder or list
// source is decoded at reduced scale for cfg.Resize (decode drafted to Resize×Resize, PIL's
// img.draft(mode, (Resize, Resize))), and with cfg.EXIFTranspose the image is turned upright
// for its EXIF orientation (Transpose). Config must have its Defaults applied.
func LoadImage(src Source, i int, cfg Config) (*Image, error) {
	if !cfg.Draft {
		m, err := src.Load(i, cfg.Channels)
		if err != nil {
			return nil, err
		}
		return upright(m, cfg), nil
	}
	return loadInto(src, i, cfg, nil)
}

// loadInto is LoadImage decoding a folder or list source's JPEG into buf when it fits (see
// decode): Feed's workers reuse one buffer instead of allocating (and zeroing) each image.
func loadInto(src Source, i int, cfg Config, buf []uint8) (*Image, error) {
	fs, ok := src.(*fileSource)
	if !ok {
		m, err := src.Load(i, cfg.Channels)
		if err != nil {
			return nil, err
		}
		return upright(m, cfg), nil
	}
	id := fs.items[i].ID
	data, err := fs.read(i)
	if err != nil {
		return nil, err
	}
	w, h := 0, 0
	if cfg.Draft {
		w, h = cfg.Resize, cfg.Resize
	}
	m, err := decode(data, cfg.Channels, w, h, haveTurbo, buf)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return upright(m, cfg), nil
}

// FeedOptions parameterise Feed. Zero values mean the defaults given per field.
type FeedOptions struct {
	Workers int // goroutines reading, decoding and rendering; 0: GOMAXPROCS
	Batch   int // images a batch; 0: 64
	Limit   int // feed only the first Limit images; 0: all
	// Ahead is how many batches may be in flight beyond the one being consumed (memory:
	// (Ahead+1)·Batch·C·S·S float32); 0: 2.
	Ahead int
}

func (o *FeedOptions) applyDefaults() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.Ahead <= 0 {
		o.Ahead = 2
	}
}

// FeedBatch is one batch of eval views in index order. Pix (len(Items)·C·S·S, NCHW) and the
// slices are reused once the callback returns.
type FeedBatch struct {
	Index int    // batch number, from 0
	Items []Item // the images, in source order
	Pix   []float32
	Errs  []error // per image: nil, or why it could not be read, decoded or rendered (its pixels are zero)
}

// FeedStats is what Feed did.
type FeedStats struct {
	Images, Failed int
	Elapsed        time.Duration
}

// ImagesPerSecond counts every image fed, failed ones included.
func (s FeedStats) ImagesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Images) / s.Elapsed.Seconds()
}

// Feed renders view 0 (cfg's eval transform) of every image of src — read, decode, resize,
// crop, normalise — into batches and hands them to fn in index order, from one goroutine: what a teacher would be fed, without the teacher. Workers render straight into
// the batch's buffer, so nothing is copied; at most Ahead+1 batches exist at once. A per-image
// failure is reported in FeedBatch.Errs; an error from fn or the end of ctx stops the feed.
func Feed(ctx context.Context, src Source, cfg Config, opts FeedOptions, fn func(FeedBatch) error) (FeedStats, error) {
	var st FeedStats
	cfg, err := cfg.Defaults()
	if err != nil {
		return st, err
	}
	opts.applyDefaults()
	n := src.Len()
	if opts.Limit > 0 {
		n = min(n, opts.Limit)
	}
	per := TensorLen(cfg.Channels, cfg.Crop)
	nb := (n + opts.Batch - 1) / opts.Batch
	start := time.Now()

	type job struct {
		b *FeedBatch
		i int // image index
	}
	free := make(chan []float32, opts.Ahead+1)
	for range opts.Ahead + 1 {
		free <- make([]float32, opts.Batch*per)
	}
	var scratch sync.Pool // *[]uint8: a worker's decode buffer
	// Images are the items, so every worker renders straight into its image's place in the
	// batch buffer; a batch leaves with its last image, in order, and its buffer comes back.
	// The window, every image of Ahead+1 batches, lets the producer take the next batch's
	// buffer only once one is free.
	err = ordered.Run(ctx, opts.Workers, (opts.Ahead+1)*opts.Batch, func(ctx context.Context, yield func(job) error) error {
		for bi := range nb {
			var pix []float32
			select {
			case pix = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			lo, hi := bi*opts.Batch, min((bi+1)*opts.Batch, n)
			b := &FeedBatch{Index: bi, Pix: pix[:(hi-lo)*per], Errs: make([]error, hi-lo), Items: make([]Item, hi-lo)}
			for i := lo; i < hi; i++ {
				if err := yield(job{b, i}); err != nil {
					return err
				}
			}
		}
		return nil
	}, func(_ context.Context, j job) (job, error) {
		k := j.i - j.b.Index*opts.Batch
		j.b.Items[k] = src.Item(j.i)
		dst := j.b.Pix[k*per : (k+1)*per]
		buf, _ := scratch.Get().(*[]uint8)
		if buf == nil {
			buf = new([]uint8)
		}
		if err := feedOne(dst, src, j.i, cfg, buf); err != nil {
			clear(dst)
			j.b.Errs[k] = err
		}
		scratch.Put(buf)
		return j, nil
	}, func(ctx context.Context, j job) error {
		if k := j.i - j.b.Index*opts.Batch; k != len(j.b.Items)-1 {
			return nil // the batch leaves with its last image
		}
		st.Images += len(j.b.Items)
		for _, e := range j.b.Errs {
			if e != nil {
				st.Failed++
			}
		}
		if err := fn(*j.b); err != nil {
			return err
		}
		free <- j.b.Pix[:cap(j.b.Pix)] // never blocks: Ahead+1 buffers, Ahead+1 places
		return nil
	})
	st.Elapsed = time.Since(start)
	return st, err
}

// feedOne renders view 0 of image i into dst, decoding into (and growing) *scratch.
func feedOne(dst []float32, src Source, i int, cfg Config, scratch *[]uint8) error {
	img, err := loadInto(src, i, cfg, *scratch)
	if err != nil {
		return err
	}
	if cap(img.Pix) > cap(*scratch) {
		*scratch = img.Pix[:cap(img.Pix)]
	}
	v, err := ViewFor(img.Width, img.Height, i, 0, cfg, ViewConfig{})
	if err != nil {
		return fmt.Errorf("view of %s: %w", src.Item(i).ID, err)
	}
	if err := Render(dst, img, v, cfg.Crop, cfg); err != nil {
		return fmt.Errorf("render %s: %w", src.Item(i).ID, err)
	}
	return nil
}
