package precompute

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
)

// Sentinel errors of precompute.
var (
	// ErrClasses reports dataset classes that do not mean the teacher's classes.
	ErrClasses = errors.New("precompute: classes disagree")
	// ErrPreprocess reports preprocessing that does not fit the teacher's input.
	ErrPreprocess = errors.New("precompute: preprocessing does not fit the teacher")
	// ErrInterrupted reports a run ended by its context (SIGINT, SIGTERM) before it was done.
	// Every image finished before it is in the store; a rerun resumes.
	ErrInterrupted = errors.New("precompute: interrupted")
)

// Job is one resolved run: teacher, dataset, preprocessing, views and store, all checked.
// Nothing of it is safe for concurrent use; Run runs once.
type Job struct {
	opts   Options
	model  *teacher.Model
	info   teacher.Info
	src    dataset.Source
	cfg    dataset.Config     // Defaults applied
	vc     dataset.ViewConfig // Defaults applied
	labels []int32            // dataset label → teacher class; nil: identity
	from   *sourceViews       // the --views-from store's views; nil: drawn from vc
	meta   schema.Metadata
	w      *store.Writer
	ran    bool
}

// New resolves opts into a Job, refusing before any image is read: a model that is not one
// NCHW float32 input and 2-D logits (the teacher names its actual inputs and outputs),
// preprocessing that does not fit it (channels, crop), class names that disagree with the
// dataset's class folders, labels outside the teacher's classes, and an existing store of
// another configuration (the store names the differing key).
func New(opts Options) (*Job, error) { return NewContext(context.Background(), opts) }

// NewContext is New that gives up as soon as ctx ends (SIGINT, SIGTERM): listing a large tree
// and loading a model cannot be cut short from outside, so they go on in the background and
// NewContext returns ErrInterrupted at once, naming the stage it was in; whatever they open is
// closed when they end. Nothing is written to the store before NewContext returns a Job.
func NewContext(ctx context.Context, opts Options) (*Job, error) {
	var stage atomic.Value
	stage.Store("checking the options")
	return interruptible(ctx, &stage, func() (*Job, error) { return newJob(opts, &stage) },
		func(j *Job) { j.Close() })
}

// interruptible runs f and returns its result, or ErrInterrupted naming stage's last value
// when ctx ends first; a result f returns after that is handed to release.
func interruptible[T any](ctx context.Context, stage *atomic.Value, f func() (T, error), release func(T)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, fmt.Errorf("%w before it started", ErrInterrupted)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				release(r.v)
			}
		}()
		var zero T
		return zero, fmt.Errorf("%w while %s", ErrInterrupted, stage.Load())
	}
}

// newJob is New's work; it names each slow stage in stage.
func newJob(opts Options, stage *atomic.Value) (*Job, error) {
	if err := opts.applyDefaults(); err != nil {
		return nil, err
	}
	j := &Job{opts: opts}
	ok := false
	defer func() {
		if !ok {
			j.Close()
		}
	}()
	stage.Store("loading the teacher " + opts.Model)
	m, err := teacher.Open(opts.Model, teacher.Options{
		Library: opts.ORTLib, Output: opts.Output, Provider: opts.Provider, Device: opts.Device,
		NoFallback: opts.NoFallback, Threads: opts.Threads, Warn: opts.Warn,
		CUDNNConvAlgoSearch: opts.CUDNNSearch, GPUMemLimit: opts.GPUMemLimit,
	})
	if err != nil {
		return nil, err
	}
	j.model, j.info = m, m.Info()
	stage.Store("listing the dataset " + opts.Data)
	if j.src, err = dataset.OpenWith(opts.Data, dataset.Options{Extensions: opts.Extensions}); err != nil {
		return nil, err
	}
	stage.Store("checking the dataset against the teacher")
	pre, names, err := j.resolvePreprocess()
	if err != nil {
		return nil, err
	}
	if names, err = j.teacherNames(names); err != nil {
		return nil, err
	}
	if j.labels, err = labelMap(j.src, names, j.info.NumClasses, opts.ClassMapFile); err != nil {
		return nil, err
	}
	vc, err := dataset.ViewConfig{Seed: opts.Seed, Scale: opts.Scale, Ratio: opts.Ratio, FlipP: opts.FlipP}.Defaults()
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	j.vc = vc
	stage.Store("hashing the images' contents")
	contentHash, err := dataset.ContentHash(j.src)
	if err != nil {
		return nil, err
	}
	ds := schema.Dataset{Name: datasetName(opts.Data), Extensions: opts.Extensions,
		ImageCount: int64(j.src.Len()), IDHash: dataset.IDHash(j.src), ContentHash: contentHash}
	views := schema.Views{Count: opts.Views, Seed: vc.Seed, Scale: vc.Scale, Ratio: vc.Ratio, FlipP: max(vc.FlipP, 0)}
	if opts.ViewsFrom != "" {
		stage.Store("reading the views of " + opts.ViewsFrom)
		if j.from, err = readViewsFrom(context.Background(), opts.ViewsFrom, j.src, ds); err != nil {
			return nil, err
		}
		if views, err = j.fitViewsFrom(pre); err != nil {
			return nil, err
		}
	}
	j.meta = schema.Metadata{
		SchemaVersion: schema.VersionFor(opts.Augment.On()),
		Teacher: schema.Teacher{
			File: filepath.Base(opts.Model), SHA256: j.info.SHA256, InputName: j.info.Input.Name,
			InputShape: j.info.Input.Dims, OutputName: j.info.Output.Name,
		},
		NumClasses: j.info.NumClasses,
		ClassNames: names,
		Preprocess: pre,
		Views:      views,
		Store:      schema.StoreConfig{Mode: opts.StoreMode, DType: opts.DType},
		Dataset:    ds,
		CreatedBy:  opts.CreatedBy,
	}
	if j.from != nil {
		j.meta.ViewsFrom = &j.from.from
	}
	if opts.Augment.On() {
		a := opts.Augment
		j.meta.Augment = &a
	}
	j.meta.ClassMap = classMapEntries(j.src.ClassNames(), j.labels, opts.ClassMapFile)
	if opts.StoreMode == schema.ModeTopK {
		j.meta.Store.K = opts.TopK
		if j.meta.Store.K == 0 {
			j.meta.Store.K = min(10, j.info.NumClasses)
		}
		if j.meta.Store.K > j.info.NumClasses {
			return nil, fmt.Errorf("%w: topk %d, but %s has %d classes", ErrOptions, opts.TopK, filepath.Base(opts.Model), j.info.NumClasses)
		}
	}
	if err := j.meta.Check(); err != nil {
		return nil, err
	}
	// A store written before content hashes resumes as it always did: its images' bytes
	// cannot be checked against a hash it never recorded.
	if prev, err := store.WriterManifest(opts.Out, opts.Shard); err == nil && prev != nil &&
		prev.Meta().Dataset.ContentHash == "" && j.meta.Dataset.ContentHash != "" {
		j.opts.Warn(fmt.Sprintf("store %s records no content hash of its images (an older precompute wrote it): resuming without checking their bytes", opts.Out))
		j.meta.Dataset.ContentHash = ""
	}
	stage.Store("opening the store " + opts.Out)
	j.w, err = store.OpenWriter(opts.Out, j.meta, store.Options{Format: opts.Format, ShardRows: opts.ShardRows, Shard: opts.Shard, Limit: int64(opts.Limit)})
	if err != nil {
		if errors.Is(err, schema.ErrMismatch) && strings.Contains(err.Error(), schema.KeyDataset+".extensions:") {
			// Diff's message says "null" for the default; say what it means and how to resume.
			err = fmt.Errorf("%w (the store's folder was listed with other extensions; null is the default, torchvision's IMG_EXTENSIONS: rerun with the store's)", err)
		} else if errors.Is(err, schema.ErrMismatch) && strings.Contains(err.Error(), schema.KeyDataset+".content_hash:") {
			err = fmt.Errorf("%w (the images changed since the store was labelled: same ids, other bytes; label them into a new store)", err)
		}
		return nil, err
	}
	ok = true
	return j, nil
}

// Metadata is the store metadata of the run.
func (j *Job) Metadata() schema.Metadata { return j.meta }

// Preprocess is the dataset configuration every view is rendered with.
func (j *Job) Preprocess() dataset.Config { return j.cfg }

// Close releases the teacher and, if Run was never called, closes the store. Safe to call
// more than once.
func (j *Job) Close() error {
	var errs []error
	if j.w != nil && !j.ran {
		errs = append(errs, j.w.Close())
		j.ran = true
	}
	if j.model != nil {
		errs = append(errs, j.model.Close())
		j.model = nil
	}
	return errors.Join(errs...)
}

// resolvePreprocess decides the eval transform: flags over the model's deitkd.preprocess over
// defaults, with the crop and channels fixed by the model's input. It sets j.cfg and returns
// what the store records, and the class names the model carries.
func (j *Job) resolvePreprocess() (dataset.Config, []string, error) {
	o, in := j.opts, j.info
	md, names, _, err := schema.ModelMetadata(in.Metadata)
	if err != nil {
		return dataset.Config{}, nil, fmt.Errorf("%s: %w", o.Model, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrPreprocess, o.Model, fmt.Sprintf(format, a...))
	}
	s, c := in.Height, in.Channels
	switch {
	case in.Height != in.Width:
		return dataset.Config{}, nil, bad("input %v is %d×%d; views are square crops", in.Input, in.Height, in.Width)
	case md.Crop != 0 && md.Crop != s:
		return dataset.Config{}, nil, bad("its metadata says crop %d but its input %v is %d×%d", md.Crop, in.Input, s, s)
	case o.Crop != 0 && o.Crop != s:
		return dataset.Config{}, nil, optionError(bad("crop %d but the model's input %v is %d×%d", o.Crop, in.Input, s, s), "Crop")
	case md.Channels != 0 && md.Channels != c:
		return dataset.Config{}, nil, bad("its metadata says %d channels but its input %v has %d", md.Channels, in.Input, c)
	}
	resize := firstNonZero(o.Resize, md.Resize, s)
	interp := o.Interpolation
	if interp == "" {
		interp = md.Interpolation
	}
	if interp == "" {
		interp = "bilinear"
	}
	mean, std := firstSet(o.Mean, md.Mean), firstSet(o.Std, md.Std)
	if mean == nil || std == nil {
		defMean, defStd := dataset.DefaultNorm(c)
		mean, std = firstSet(mean, defMean), firstSet(std, defStd)
		j.opts.Warn(fmt.Sprintf("%s carries no mean/std in %s; normalising with mean %v std %v (give its mean and std if it was trained otherwise)",
			filepath.Base(o.Model), schema.KeyPreprocess, fmtFloats(mean), fmtFloats(std)))
	}
	for _, f := range []struct {
		name string
		v    *[]float64
	}{{"mean", &mean}, {"std", &std}} {
		v, err := dataset.PerChannel(f.name, *f.v, c)
		if err != nil {
			return dataset.Config{}, nil, bad("%s has %d values but the model's input %v has %d channels", f.name, len(*f.v), in.Input, c)
		}
		*f.v = v
	}
	cfg := dataset.Config{Resize: resize, Crop: s, Interpolation: interp, Mean: mean, Std: std, Channels: c, Draft: o.JPEGDraft, EXIFTranspose: o.EXIFTranspose}
	if cfg, err = cfg.Defaults(); err != nil {
		return dataset.Config{}, nil, fmt.Errorf("%w: %s: %w", ErrPreprocess, o.Model, err)
	}
	j.cfg = cfg
	return cfg, names, nil
}

// teacherNames returns the teacher's class names: --class-names over the model's own, nil if
// neither gives them. Their number must be K.
func (j *Job) teacherNames(fromModel []string) ([]string, error) {
	names := fromModel
	src := j.opts.Model + " metadata " + schema.KeyClassNames
	if j.opts.ClassNamesFile != "" {
		fromFile, err := ReadClassNames(j.opts.ClassNamesFile)
		if err != nil {
			return nil, classFileError(err)
		}
		if fromModel != nil && !slices.Equal(fromModel, fromFile) {
			j.opts.Warn(fmt.Sprintf("the class names of %s replace those %s carries", j.opts.ClassNamesFile, filepath.Base(j.opts.Model)))
		}
		names, src = fromFile, j.opts.ClassNamesFile
	}
	if names != nil && len(names) != j.info.NumClasses {
		return nil, fmt.Errorf("%w: %s has %d class names, the model %d classes", ErrClasses, src, len(names), j.info.NumClasses)
	}
	return names, nil
}

// datasetName is the dataset's name in the metadata: the folder's, list file's or IDX
// prefix's base name (with the IDX folder: "fashion-mnist/t10k"), so a store resumes from
// another copy of the same data.
func datasetName(spec string) string {
	switch {
	case strings.HasPrefix(spec, "idx:"):
		p := filepath.Clean(strings.TrimPrefix(spec, "idx:"))
		return filepath.Base(filepath.Dir(p)) + "/" + filepath.Base(p)
	case strings.HasPrefix(spec, "list:"):
		return filepath.Base(filepath.Clean(strings.TrimPrefix(spec, "list:")))
	}
	return filepath.Base(filepath.Clean(spec))
}

func firstNonZero(v ...int) int {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

func firstSet(v ...[]float64) []float64 {
	for _, x := range v {
		if x != nil {
			return x
		}
	}
	return nil
}

func fmtFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
