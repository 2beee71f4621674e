package traindata

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/deitkd/deitkd/dataset"
)

// Sentinel errors.
var (
	// ErrMismatch: the label store does not fit the source or the student. The message names
	// the metadata field, e.g. "deitkd.preprocess.mean: store has [0.286], student has [0.5]".
	ErrMismatch = errors.New("traindata: label store does not fit")
	// ErrOptions: options that cannot make a set.
	ErrOptions = errors.New("traindata: bad option")
	// ErrEmpty: no image is left to train or evaluate on.
	ErrEmpty = errors.New("traindata: no usable images")
)

// Options configures a Set. Zero values mean the defaults given per field.
type Options struct {
	Labels string // label store folder; optional for an eval set (see OpenEval)
	// Data are the images, as dataset.Open takes them: DIR, list:FILE or idx:PREFIX. A DIR is
	// listed with the extensions the label store records (schema.Dataset.Extensions; for an
	// eval set without a store, the training store's).
	Data string
	// Limit, when positive, uses only the images with source index < Limit.
	Limit int

	// The student's input. Size is the side every view is rendered at (0: the store's crop);
	// Channels, Mean and Std must agree with the store's preprocessing (0 or nil: the store's).
	// Classes must equal the store's class count (0: the store's).
	Size      int
	Channels  int
	Mean, Std []float64
	Classes   int

	Batch int // rows per batch; 0: 128
	// ViewsPerImage n puts n distinct views of each image into an epoch, next to each other:
	// an epoch is then n rows per image. At most the store's view count for a multi-view
	// store; with a single-view store, n fresh random views against the one target. The
	// epoch is then n times as long, unless RepeatedAug. 0: 1.
	ViewsPerImage int
	// RepeatedAug keeps only the first Len() rows of each epoch's plan, so an epoch is as long
	// as without repeats: the first ⌈Len()/ViewsPerImage⌉ images of the epoch's permutation,
	// each ViewsPerImage times (the last perhaps fewer). This is DeiT's repeated augmentation
	// (timm's RASampler on one process, whose epoch is cut to the dataset's length); without
	// it ViewsPerImage multiplies the epoch (FKD's multi-crop). RASampler also rounds its
	// epoch down to a multiple of 256, so that every GPU gets whole batches; one process has
	// no such need, and a dataset under 256 images would have an empty epoch, so Len() rows
	// it is.
	RepeatedAug bool
	Workers     int // rendering goroutines; 0: runtime.NumCPU()
	Seed        uint64
	// Tau is the temperature of Batch.TeacherProbs; 0: 1.
	Tau float64
	// Probs fills Batch.TeacherProbs (soft distillation); otherwise it stays nil.
	Probs bool
	// Pixels fills Batch.Pixels (pictures of the views); otherwise it stays nil.
	Pixels bool
	// AugScale overrides the area-fraction range of the train-time random views of a
	// single-view store; zero: the store's views scale (precompute --scale), so a fixed-teacher
	// run and a multi-view run made with the same flags see the same distribution of crops.
	AugScale [2]float64
	// Augment is the train-time augmentation of a single-view store's random views (fixed
	// teacher), each view's drawn from (Seed, epoch, image, draw) as its crop is, so an epoch
	// is the same whenever it is rendered. A mixed row's partner is the row at the mirrored
	// position of its batch (timm's flipped batch), its teacher target the λ-mix of the two
	// stored targets: the stored-teacher approximation (FKD's), not the teacher's output on
	// the mixed pixels. A multi-view store refuses it (its views are replayed as stored).
	Augment dataset.AugmentConfig
	// CacheBytes bounds the decoded pixels kept in memory; 0: 2 GiB; negative: no cache.
	CacheBytes int64
	// Log receives one-line notes (skipped images, the fixed-teacher set-up). nil: discarded.
	Log func(string)
}

func (o *Options) applyDefaults() error {
	if o.Data == "" {
		return fmt.Errorf("%w: no data source", ErrOptions)
	}
	if o.Batch == 0 {
		o.Batch = 128
	}
	if o.ViewsPerImage == 0 {
		o.ViewsPerImage = 1
	}
	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Tau == 0 {
		o.Tau = 1
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 2 << 30
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	switch {
	case o.Batch < 1:
		return fmt.Errorf("%w: batch %d, want ≥ 1", ErrOptions, o.Batch)
	case o.ViewsPerImage < 1:
		return fmt.Errorf("%w: views per image %d, want ≥ 1", ErrOptions, o.ViewsPerImage)
	case o.Workers < 1:
		return fmt.Errorf("%w: workers %d, want ≥ 1", ErrOptions, o.Workers)
	case o.Limit < 0:
		return fmt.Errorf("%w: limit %d, want ≥ 0", ErrOptions, o.Limit)
	case o.Tau < 0:
		return fmt.Errorf("%w: tau %g, want > 0", ErrOptions, o.Tau)
	case o.Size < 0 || o.Channels < 0 || o.Classes < 0:
		return fmt.Errorf("%w: negative size, channels or classes", ErrOptions)
	case o.Augment.Check() != nil:
		return fmt.Errorf("%w: %w", ErrOptions, o.Augment.Check())
	case o.AugScale != [2]float64{} && !(o.AugScale[0] > 0 && o.AugScale[0] <= o.AugScale[1] && o.AugScale[1] <= 1):
		return fmt.Errorf("%w: augmentation scale %v, want 0 < a ≤ b ≤ 1", ErrOptions, o.AugScale)
	}
	return nil
}
