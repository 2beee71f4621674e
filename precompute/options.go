package precompute

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
)

// ErrOptions reports options that cannot make a run, before anything is opened.
var ErrOptions = errors.New("precompute: bad option")

// OptionError is an error that names the options at fault by their Options field names
// (Options, e.g. "JPEGDraft", "Views"), as this package knows no flag: a caller that set them
// from flags names its flags beside the message (cmd/precompute does).
type OptionError struct {
	Options []string
	Err     error
}

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// optionError attaches to err the names of the Options fields it is about.
func optionError(err error, options ...string) error { return &OptionError{Options: options, Err: err} }

// OnError values: what a per-image failure does.
const (
	OnErrorSkip = "skip" // log it to the store's failure log and go on (exit code 3 at the end)
	OnErrorFail = "fail" // end the run at the first failed image
)

// Options configures a run; each field is one precompute flag. Zero values mean the defaults
// given per field.
type Options struct {
	Model string // the ONNX teacher file
	Data  string // the dataset, as dataset.Open takes it: DIR, list:FILE or idx:PREFIX
	Out   string // the store folder
	// Extensions are the file name endings a folder Data is listed by (dataset.Options); nil:
	// torchvision's IMG_EXTENSIONS, as ImageFolder lists; []string{dataset.AllFiles}: every
	// file. The store records them in canonical form (schema.Dataset.Extensions). A list file
	// or IDX files are not listed from a folder: Extensions with them is an error.
	Extensions []string

	// Batch is the number of rows (image views) per teacher run; 0: 64. Whole images go into
	// a batch, so with several views a batch holds the most whole images that fit.
	Batch int
	// Workers is the number of decode/preprocess goroutines and Threads the teacher's
	// intra-op threads. Zero means every core decodes, and the teacher gets every core on CPU
	// and 1 thread on CUDA (it only launches kernels). Decoders block once two batches are
	// ahead of the teacher, so where the teacher is the bottleneck they cost little, and where
	// decoding is (large photos) every core helps. Measured on 2 cores (a busy machine,
	// alternating runs): Fashion-MNIST + the demo teacher, 2 workers + 2 threads 14.7–16.3 s
	// against 16.5–16.7 s for 1 + 2 and 25.4–26.1 s for 2 + 1; 48 JPEGs of 4000×3000 +
	// RegNetY-400MF at 224, 4.7 s against 7.0–7.3 s for 1 + 2.
	Workers int
	Threads int
	// Window bounds the images in flight between the reader and the batcher (decoding,
	// decoded, or waiting for an earlier image): memory stays flat however large the dataset.
	// 0: enough for two batches plus four per worker.
	Window int

	Provider   string // "cpu" (default) or "cuda"
	Device     int    // CUDA device id
	NoFallback bool   // CUDA that cannot start is an error instead of a warning and a CPU run
	// CUDNNSearch is cuDNN's convolution algorithm search on CUDA: EXHAUSTIVE, HEURISTIC or
	// DEFAULT; empty: ONNX Runtime's default (EXHAUSTIVE).
	CUDNNSearch string
	GPUMemLimit int64  // cap on ONNX Runtime's CUDA memory arena in bytes; 0: none
	ORTLib      string // libonnxruntime.so path; empty searches DEITKD_ORT_LIB, then the setup cache
	Output      string // the logits output of a model with several; empty: the first 2-D float output

	StoreMode schema.Mode  // schema.ModeFull (default) or schema.ModeTopK
	TopK      int          // classes per row in mode topk; 0: min(10, K)
	DType     schema.DType // schema.Float32 (default) or schema.Float16
	Format    store.Format // store.FormatParquet (default) or store.FormatArrow
	Shard     store.ShardSpec
	// ShardRows is the rows per store shard; 0: store.DefaultShardRows. Small values make
	// many small files; tests use them to land a kill between shards.
	ShardRows int

	// Limit, when positive, restricts the run to images with index < Limit (so a rerun with
	// the same Limit resumes, and one without it completes the store).
	Limit int
	// OnError is OnErrorSkip (default) or OnErrorFail.
	OnError string

	// Preprocessing; each overrides the model's deitkd.preprocess metadata. Resize 0 and no
	// metadata: the shorter side is resized to the crop (no margin). Crop must equal the
	// model's input side. Mean and Std hold one value per channel (or one for all).
	Resize        int
	Crop          int
	Interpolation string
	Mean, Std     []float64

	// ClassNamesFile names a file of class names, one a line, K lines, for a model that
	// carries none (it replaces the model's own, with a warning).
	ClassNamesFile string
	// ClassMapFile maps dataset class folders to teacher classes; see ReadClassMap.
	ClassMapFile string

	// JPEGDraft decodes large JPEGs at 1/2, 1/4 or 1/8 scale for Resize, as PIL's draft does
	// (dataset.Config.Draft): faster on large photos, other pixels; the store's preprocessing
	// records it. The centre-crop view only: with Views > 1 it is refused, since a random
	// crop of a drafted image would be drawn at its reduced size.
	JPEGDraft bool

	// EXIFTranspose turns each image upright for its EXIF orientation after decoding, as PIL's
	// ImageOps.exif_transpose does (dataset.Config.EXIFTranspose); views are drawn on the
	// upright image. Off by default, as torchvision; the store's preprocessing records it.
	EXIFTranspose bool

	// Views per image: view 0 is the centre (eval) view, 1..Views-1 RandomResizedCrop views
	// drawn from Seed. 0: 1.
	Views int
	Seed  uint64
	Scale [2]float64 // area fraction range; zero: torchvision's (0.08, 1)
	Ratio [2]float64 // aspect ratio range; zero: torchvision's (3/4, 4/3)
	FlipP float64    // horizontal flip probability; 0: 0.5; negative: never

	// ViewsFrom, when set, is a finished store (its folder or manifest file) whose rows are
	// labelled again, with this teacher at its input size: exactly the images it holds and,
	// of each, every view it stores, with the crop box and flip of its row (boxes are
	// fractions of the source image, so they mean the same pixels at any resolution). The
	// data set must be the one that store was made from (image count, id list, contents);
	// the new store takes its deitkd.views and records it in deitkd.views_from. Views, Seed,
	// Scale, Ratio and FlipP come from it and must be zero.
	ViewsFrom string

	// Augment is what random views 1..Views-1 get after their crop and flip (view 0, the eval
	// view, none): RandAugment's ops, random erasing and Mixup/CutMix, each view's parameters
	// drawn from (Seed, image, view) and stored in the replay columns of a schema-version-2
	// store (dataset.AugmentConfig; the zero value: none, a version-1 store). A mixed view's
	// partner is another image and random view drawn from the same key (dataset.DrawPartner),
	// rendered with its own augmentation and mixed in before the teacher sees the pixels. It
	// needs Views ≥ 2 and no ViewsFrom.
	Augment dataset.AugmentConfig

	// CreatedBy is recorded in the store's metadata (tool and version); empty: "deitkd precompute".
	CreatedBy string

	// Progress, if set, is called from one goroutine: when labelling starts, after every
	// written batch, every second in between, and once at the end. It must not block for
	// long: the writer waits for it.
	Progress func(Progress)
	// Warn, if set, receives one-line warnings (CUDA fallback, defaults a model does not say).
	Warn func(string)
}

// Progress is the state of a running Job.
type Progress struct {
	Total   int64 // images this run will try (not already present, this shard's, under Limit)
	Done    int64 // images labelled so far
	Failed  int64 // images that could not be labelled
	Rows    int64 // rows written
	Decoded int64 // images read and decoded so far, ahead of the teacher (failed ones included)
	Elapsed time.Duration
	Final   bool // the last call
}

func (o *Options) applyDefaults() error {
	if o.Model == "" || o.Data == "" || o.Out == "" {
		return optionError(fmt.Errorf("%w: a model, a dataset and an output folder are required", ErrOptions), "Model", "Data", "Out")
	}
	exts, err := checkExtensions(o.Data, o.Extensions)
	if err != nil {
		return err
	}
	o.Extensions = exts
	if o.ViewsFrom != "" && (o.Views != 0 || o.Seed != 0 || o.Scale != [2]float64{} || o.Ratio != [2]float64{} || o.FlipP != 0) {
		return optionError(fmt.Errorf("%w: the views (count, seed, scale, ratio and flip probability) come from the views-from store; give none of them", ErrOptions),
			"Views", "Seed", "Scale", "Ratio", "FlipP", "ViewsFrom")
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	cuda := o.Provider == "cuda"
	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
		if cuda {
			o.Threads = 1
		}
	}
	if o.Views == 0 {
		o.Views = 1
	}
	if o.StoreMode == "" {
		o.StoreMode = schema.ModeFull
	}
	if o.DType == "" {
		o.DType = schema.Float32
	}
	if o.Format == "" {
		o.Format = store.FormatParquet
	}
	if o.OnError == "" {
		o.OnError = OnErrorSkip
	}
	if o.CreatedBy == "" {
		o.CreatedBy = "deitkd precompute"
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	switch {
	case o.Batch < 1:
		return fmt.Errorf("%w: batch %d, want ≥ 1", ErrOptions, o.Batch)
	case o.Workers < 1:
		return fmt.Errorf("%w: workers %d, want ≥ 1", ErrOptions, o.Workers)
	case o.Threads < 1:
		return fmt.Errorf("%w: threads %d, want ≥ 1", ErrOptions, o.Threads)
	case o.Views < 1:
		return fmt.Errorf("%w: views %d, want ≥ 1", ErrOptions, o.Views)
	case o.Limit < 0:
		return fmt.Errorf("%w: limit %d, want ≥ 0", ErrOptions, o.Limit)
	case o.ShardRows < 0:
		return fmt.Errorf("%w: shard rows %d, want ≥ 0", ErrOptions, o.ShardRows)
	case o.Window < 0:
		return fmt.Errorf("%w: window %d, want ≥ 0", ErrOptions, o.Window)
	case o.OnError != OnErrorSkip && o.OnError != OnErrorFail:
		return fmt.Errorf("%w: on-error %q, want skip or fail", ErrOptions, o.OnError)
	case o.StoreMode != schema.ModeFull && o.StoreMode != schema.ModeTopK:
		return fmt.Errorf("%w: store %q, want full or topk", ErrOptions, o.StoreMode)
	case o.StoreMode == schema.ModeFull && o.TopK != 0:
		return fmt.Errorf("%w: topk %d needs store topk", ErrOptions, o.TopK)
	case o.TopK < 0:
		return fmt.Errorf("%w: topk %d, want ≥ 1", ErrOptions, o.TopK)
	case o.DType != schema.Float32 && o.DType != schema.Float16:
		return fmt.Errorf("%w: dtype %q, want float32 or float16", ErrOptions, o.DType)
	case o.Format != store.FormatParquet && o.Format != store.FormatArrow:
		return fmt.Errorf("%w: format %q, want parquet or arrow", ErrOptions, o.Format)
	case o.Shard.Count < 0 || (o.Shard.Count > 1 && (o.Shard.Index < 0 || o.Shard.Index >= o.Shard.Count)):
		return fmt.Errorf("%w: shard %d/%d", ErrOptions, o.Shard.Index, o.Shard.Count)
	}
	return o.checkValues()
}

// checkValues refuses, as ErrOptions, the values the teacher and dataset packages would refuse
// only later (after the model is loaded), asking each package's own check so the rules live in
// one place: provider and CUDA settings, interpolation, mean and std, and the view ranges.
func (o *Options) checkValues() error {
	if err := o.Augment.Check(); err != nil {
		return optionError(rewrap(err, dataset.ErrBadConfig), "Augment")
	}
	if o.Augment.On() && (o.Views < 2 || o.ViewsFrom != "") {
		return optionError(fmt.Errorf("%w: augmentations apply to random views 1..views-1 drawn here: give two views or more, and no views-from store", ErrOptions),
			"Augment", "Views", "ViewsFrom")
	}
	if o.JPEGDraft && o.Views > 1 {
		return optionError(fmt.Errorf("%w: JPEG drafting renders the centre-crop view only (a random crop of a drafted image would be drawn at its reduced size): use one view", ErrOptions),
			"JPEGDraft", "Views")
	}
	err := teacher.Options{Provider: o.Provider, Device: o.Device, Threads: o.Threads,
		CUDNNConvAlgoSearch: o.CUDNNSearch, GPUMemLimit: o.GPUMemLimit}.Check()
	if err != nil {
		return rewrap(err, teacher.ErrOptions)
	}
	// Mean and std are checked one value at a time: their count is the model's channels,
	// unknown until it is open.
	for _, f := range []struct {
		name string
		v    []float64
	}{{"mean", o.Mean}, {"std", o.Std}} {
		for _, x := range f.v {
			cfg := dataset.Config{Channels: 1, Interpolation: o.Interpolation, Mean: []float64{0}, Std: []float64{1}}
			if f.name == "mean" {
				cfg.Mean[0] = x
			} else {
				cfg.Std[0] = x
			}
			if _, err := cfg.Defaults(); err != nil {
				return rewrap(err, dataset.ErrBadConfig)
			}
		}
	}
	if _, err := (dataset.Config{Channels: 1, Interpolation: o.Interpolation}).Defaults(); err != nil {
		return rewrap(err, dataset.ErrBadConfig)
	}
	if _, err := (dataset.ViewConfig{Scale: o.Scale, Ratio: o.Ratio, FlipP: o.FlipP}).Defaults(); err != nil {
		return rewrap(err, dataset.ErrBadConfig)
	}
	return nil
}

// rewrap turns another package's bad-option error into ErrOptions, keeping its detail.
func rewrap(err, sentinel error) error {
	return fmt.Errorf("%w: %s", ErrOptions, strings.TrimPrefix(err.Error(), sentinel.Error()+": "))
}

// checkExtensions returns exts in canonical form (dataset.CanonicalExtensions), refusing
// them for a source that is not a folder, which they would not change.
func checkExtensions(data string, exts []string) ([]string, error) {
	if exts == nil {
		return nil, nil
	}
	if strings.HasPrefix(data, "list:") || strings.HasPrefix(data, "idx:") {
		return nil, optionError(fmt.Errorf("%w: extensions apply to a folder dataset; %s is not listed from a folder", ErrOptions, data), "Extensions", "Data")
	}
	c, err := dataset.CanonicalExtensions(exts)
	if err != nil {
		return nil, optionError(fmt.Errorf("%w: %w", ErrOptions, err), "Extensions")
	}
	return c, nil
}

// ParseExtensions parses precompute --extensions (dataset.ParseExtensions): ".jpg,.png,.gif",
// dots optional, any case, or "all"; empty gives nil (torchvision's IMG_EXTENSIONS).
func ParseExtensions(s string) ([]string, error) {
	exts, err := dataset.ParseExtensions(s)
	if err != nil {
		return nil, optionError(fmt.Errorf("%w: extensions: %w", ErrOptions, err), "Extensions")
	}
	return exts, nil
}

// ParseShard parses "i/n" (0 ≤ i < n): this process takes the images whose index ≡ i (mod n).
func ParseShard(s string) (store.ShardSpec, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return store.ShardSpec{}, fmt.Errorf("%w: shard %q, want i/n with 0 ≤ i < n", ErrOptions, s)
	}
	return store.ShardSpec{Index: i, Count: n}, nil
}

// ParseFloats parses a comma-separated list of numbers ("0.485,0.456,0.406"); empty gives nil.
func ParseFloats(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]float64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a number in %q", ErrOptions, p, s)
		}
		out[i] = v
	}
	return out, nil
}

// ParseRange parses "a,b" into a range; empty gives the zero range (the default).
func ParseRange(s string) ([2]float64, error) {
	v, err := ParseFloats(s)
	if err != nil {
		return [2]float64{}, err
	}
	switch len(v) {
	case 0:
		return [2]float64{}, nil
	case 2:
		return [2]float64{v[0], v[1]}, nil
	}
	return [2]float64{}, fmt.Errorf("%w: range %q, want two numbers a,b", ErrOptions, s)
}
