package train

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/traindata"
)

// Options configure a run. Every field is read literally, except where its comment names a
// default: those are the fields whose zero is no usable value, or "unset, the recipe's".
type Options struct {
	Labels     string // the training label store (a folder or its manifest.json), made from Data
	Data       string // training images, as dataset.Open takes them: DIR, list:FILE or idx:PREFIX
	EvalData   string // optional evaluation images: view 0 of each after every epoch
	EvalLabels string // optional label store of EvalData (its labels, boxes, teacher accuracy)
	Limit      int    // only the first Limit training images; 0: all
	EvalLimit  int    // only the first EvalLimit images of EvalData; 0: all
	Out        string // the run folder (see the package comment)
	// Resume continues the run in Out from its checkpoint (or starts it when Out holds no
	// checkpoint yet, so the same job can be rerun until it is complete); without it, Out must
	// hold none of the run files. A resume must repeat the run's settings: see the package
	// comment.
	Resume bool

	// Preset names the architecture (student.Preset; "": fm-tiny). Arch overrides it: each
	// non-zero size field of Arch replaces the preset's; NoDistToken is taken as is; Classes
	// always comes from the label store.
	Preset string
	Arch   student.Config

	// Recipe names the training recipe (student.NewRecipe; "": the default): every value
	// below overrides it.
	Recipe student.Recipe
	Epochs int // 0 trains no step: the initial model is evaluated, saved and exported
	Batch  int // rows (image views) per step, ≥ 1
	Seed   uint64
	// LR is the peak learning rate; 0: the recipe's (which scales with Batch).
	LR float64
	// Each of these, when set, replaces the recipe's value, literally: a pointer to 0 is 0 (no
	// weight decay, no clipping, no smoothing, no drop-path, a final rate of 0). DropPath is the
	// recipe's stochastic depth (TrainConfig.DropPath).
	MinLR, WD, Clip, Smoothing, DropPath *float64
	// WeightInit, when set, replaces the recipe's initialisation.
	WeightInit student.WeightInit
	// Warmup, when set, replaces the recipe's warm-up of either kind.
	Warmup *Warmup
	// Distill is the distillation loss; nil: DistillHard, or DistillNone for a student without
	// the distillation token (Arch.NoDistToken).
	Distill *student.Distill
	Alpha   float64        // weight of the teacher term
	Tau     float64        // soft distillation temperature, also that of the dense teacher targets (0: 1)
	KLNorm  student.KLNorm // soft loss normalisation ("": KLBatch)
	Fuse    student.Fuse   // eval fusion of the two heads ("": FuseProbs), and the exports'

	// ViewsPerImage, AugScale, Mean, Std and Workers go to traindata.Options as they are,
	// AugScale once New has filled in its default (DefaultAugScale) when it is zero.
	ViewsPerImage int
	AugScale      [2]float64
	Mean, Std     []float64
	Workers       int
	// RepeatedAug n, above 0, is DeiT's repeated augmentation (timm's RASampler): n views of
	// each image next to each other, as ViewsPerImage n, with the epoch cut to the image count
	// (traindata.Options.RepeatedAug), so an epoch has as many steps as without it. It is
	// ViewsPerImage's mechanism with RASampler's epoch length, not a second one: giving both
	// (ViewsPerImage above 1) is refused. 0: off.
	RepeatedAug int
	CacheBytes  int64 // decoded images kept in memory; 0: none

	// The train-time augmentation against a fixed teacher (a single-view store), after each
	// crop and flip (dataset.AugmentConfig's fields): each of these, when set, replaces the
	// recipe's (RecipeDeiT: DeiTAugment, for a single-view store; the default recipe: none),
	// literally: a RandAugment without layers, a probability or an alpha of 0 is none. A store
	// with stored views refuses any set above 0.
	RandAugment                                            *dataset.RandAugment
	EraseProb, MixupAlpha, CutMixAlpha, MixProb, MixSwitch *float64

	// Init, if set, is a file whose weights the student starts from (see init.go): a deitkd
	// checkpoint or a safetensors file with timm's DeiT keys. NewHeads re-initialises its
	// heads when its class count differs from the label store's (student.InitOptions).
	Init     string
	NewHeads bool

	// Export names the formats (export.WriteFile's) written into Out after training.
	Export []string

	// Progress, if set, is called on the calling goroutine after every step and at the end of
	// every epoch's training and evaluation (Final). Default: nothing.
	Progress func(Progress)
	// Saved, if set, is called after each checkpoint is written, with its path and step.
	Saved func(path string, step int)
	// Log receives one-line notes. Default: nothing.
	Log func(string)
}

// Warmup is a linear warm-up: a fraction of all steps, or (Epochs above 0) epochs.
type Warmup struct {
	Frac, Epochs float64
}

// Job is a resolved run: its sets opened and checked against each other and the student, its
// recipe filled in. Run trains it.
type Job struct {
	o        Options
	train    *traindata.Set
	eval     *traindata.Set // nil: no eval records
	model    student.Config // the architecture
	recipe   student.TrainConfig
	augment  dataset.AugmentConfig // resolved: the recipe's and the options'
	settings settings
	inputs   inputs
	init     *student.Model // Options.Init's weights; nil: drawn from the seed
}

// New resolves a run: the recipe and its overrides, the architecture, the training and eval
// sets (a label store that does not fit its images or the student is refused with
// traindata.ErrMismatch naming the key), and the settings a resume must repeat. It writes
// nothing; an option no run can use is refused with ErrOptions.
func New(ctx context.Context, o Options) (*Job, error) {
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.Saved == nil {
		o.Saved = func(string, int) {}
	}
	if o.Labels == "" || o.Data == "" || o.Out == "" {
		return nil, fmt.Errorf("%w: a label store, its images and an output folder are required", ErrOptions)
	}
	if o.EvalLabels != "" && o.EvalData == "" {
		return nil, fmt.Errorf("%w: an eval label store needs its eval images", ErrOptions)
	}
	switch {
	case o.RepeatedAug < 0:
		return nil, fmt.Errorf("%w: repeated augmentation %d, want ≥ 0 (0: off)", ErrOptions, o.RepeatedAug)
	case o.RepeatedAug > 0 && o.ViewsPerImage > 1:
		return nil, fmt.Errorf("%w: repeated augmentation %d and %d views per image: repeated augmentation is views per image "+
			"with the epoch cut to the image count; give one", ErrOptions, o.RepeatedAug, o.ViewsPerImage)
	case o.RepeatedAug > 0:
		o.ViewsPerImage = o.RepeatedAug
	}
	if o.Fuse == "" {
		o.Fuse = student.FuseProbs
	}
	for i, f := range o.Export { // a format no export writes is refused now, not after training
		o.Export[i] = strings.TrimSpace(f)
		if _, err := export.FileName(o.Export[i]); err != nil {
			return nil, fmt.Errorf("%w: export: %w", ErrOptions, err)
		}
	}
	cfg, err := architecture(o.Preset, o.Arch)
	if err != nil {
		return nil, err
	}
	tc, err := recipe(o)
	if err != nil {
		return nil, err
	}
	augDefault, why := o.AugScale == [2]float64{}, ""
	if augDefault {
		o.AugScale, why = DefaultAugScale(cfg.ImageSize, tc.Epochs)
	}
	aug, augWhy, err := augment(o, tc)
	if err != nil {
		return nil, err
	}
	if augWhy != "" {
		o.Log(augWhy)
	}
	j := &Job{o: o, recipe: tc, augment: aug}

	cache := o.CacheBytes
	if cache == 0 {
		cache = -1 // traindata: negative is no cache, 0 its default
	}
	// The dense teacher targets are those of the soft loss, at its τ: both from the recipe.
	j.train, err = traindata.Open(ctx, traindata.Options{Labels: o.Labels, Data: o.Data, Limit: o.Limit,
		Size: cfg.ImageSize, Channels: cfg.Channels, Mean: o.Mean, Std: o.Std,
		Batch: tc.Batch, ViewsPerImage: o.ViewsPerImage, RepeatedAug: o.RepeatedAug > 0, Workers: o.Workers, Seed: o.Seed,
		Tau: tc.Loss.Tau, Probs: tc.Loss.Distill == student.DistillSoft, AugScale: o.AugScale, CacheBytes: cache, Log: o.Log,
		Augment: aug})
	if err != nil {
		return nil, err
	}
	if augDefault && j.train.Meta().Views.Count > 1 {
		j.o.AugScale = [2]float64{} // stored views are replayed: no train-time crops to choose, none to record
	} else if why != "" {
		o.Log(why)
	}
	cfg.Classes = j.train.Classes()
	j.model = cfg
	if o.EvalData != "" {
		j.eval, err = traindata.OpenEval(ctx, traindata.Options{Labels: o.EvalLabels, Data: o.EvalData, Limit: o.EvalLimit,
			Size: j.train.Size(), Channels: j.train.Channels(), Mean: j.train.Mean(), Std: j.train.Std(), Classes: j.train.Classes(),
			Batch: tc.Batch, Workers: o.Workers, CacheBytes: cache, Log: o.Log}, j.train.Meta())
		if err != nil {
			return nil, err
		}
	} else {
		o.Log("no eval data: no accuracy is measured")
	}
	switch t := j.train; {
	case cfg.ImageSize != t.Size():
		return nil, fmt.Errorf("%w: the model takes %d×%d images, the data is rendered at %d", ErrOptions, cfg.ImageSize, cfg.ImageSize, t.Size())
	case cfg.Channels != t.Channels():
		return nil, fmt.Errorf("%w: the model takes %d channels, the data has %d", ErrOptions, cfg.Channels, t.Channels())
	}
	j.recipe.StepsPerEpoch = j.train.BatchesPerEpoch()
	if err := j.recipe.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if err := j.resolveSettings(); err != nil {
		return nil, err
	}
	if err := j.resolveInit(); err != nil {
		return nil, err
	}
	c := cfg
	o.Log(fmt.Sprintf("student %s: %d×%d×%d, patch %d, dim %d, depth %d, heads %d, %d classes, dist token %v; BLAS %s",
		presetName(o.Preset), c.ImageSize, c.ImageSize, c.Channels, c.Patch, c.Dim, c.Depth, c.Heads, c.Classes, !c.NoDistToken, student.BLAS))
	if o.RepeatedAug > 0 {
		o.Log(fmt.Sprintf("data: %d images, repeated augmentation %d (%d rows per epoch), %d steps of %d; distill %s",
			j.train.Len(), o.RepeatedAug, j.train.RowsPerEpoch(), j.train.BatchesPerEpoch(), tc.Batch, tc.Loss.Distill))
	} else {
		o.Log(fmt.Sprintf("data: %d images × %d view(s) per epoch, %d steps of %d; distill %s",
			j.train.Len(), max(o.ViewsPerImage, 1), j.train.BatchesPerEpoch(), tc.Batch, tc.Loss.Distill))
	}
	return j, nil
}

func presetName(p string) string {
	if p == "" {
		return "fm-tiny"
	}
	return p
}

// architecture is the preset with the non-zero sizes of arch over it.
func architecture(preset string, arch student.Config) (student.Config, error) {
	cfg, err := student.Preset(preset)
	if err != nil {
		return student.Config{}, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	for _, f := range []struct{ dst, v *int }{{&cfg.ImageSize, &arch.ImageSize}, {&cfg.Channels, &arch.Channels},
		{&cfg.Patch, &arch.Patch}, {&cfg.Dim, &arch.Dim}, {&cfg.Depth, &arch.Depth}, {&cfg.Heads, &arch.Heads}} {
		if *f.v != 0 {
			*f.dst = *f.v
		}
	}
	if arch.MLPRatio != 0 {
		cfg.MLPRatio = arch.MLPRatio
	}
	cfg.NoDistToken = arch.NoDistToken
	return cfg.WithDefaults(), nil
}

// recipe fills in the run's recipe once: the named recipe's values, then every option,
// literally, except LR 0 (the recipe's) and the unset pointers.
func recipe(o Options) (student.TrainConfig, error) {
	if o.Batch < 1 {
		return student.TrainConfig{}, fmt.Errorf("%w: batch %d: want ≥ 1", ErrOptions, o.Batch)
	}
	tc, err := student.NewRecipe(o.Recipe, o.Batch)
	if err != nil {
		return student.TrainConfig{}, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	tc.Epochs, tc.Seed = o.Epochs, o.Seed
	distill := student.DistillHard
	if o.Arch.NoDistToken {
		distill = student.DistillNone
	}
	if o.Distill != nil {
		distill = *o.Distill
	}
	tc.Loss = student.LossConfig{Distill: distill, Alpha: o.Alpha, Tau: o.Tau, Smoothing: tc.Loss.Smoothing, KLNorm: o.KLNorm}
	lrGiven := o.LR != 0
	if lrGiven {
		tc.LR = o.LR
	}
	for _, f := range []struct {
		dst *float64
		v   *float64
	}{{&tc.MinLR, o.MinLR}, {&tc.WD, o.WD}, {&tc.Clip, o.Clip}, {&tc.Loss.Smoothing, o.Smoothing}, {&tc.DropPath, o.DropPath}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if o.WeightInit != "" {
		tc.WeightInit = o.WeightInit
	}
	if w := o.Warmup; w != nil {
		tc.WarmupFrac, tc.WarmupEpochs = w.Frac, w.Epochs
	}
	// The cosine decays from the peak to the final rate: one above the other would make it rise.
	if tc.MinLR > tc.LR {
		given := func(set bool) string {
			if set {
				return "given"
			}
			return "the recipe's"
		}
		return student.TrainConfig{}, fmt.Errorf("%w: the final learning rate %g (%s) is above the peak %g (%s): want min_lr ≤ lr",
			ErrOptions, tc.MinLR, given(o.MinLR != nil), tc.LR, given(lrGiven))
	}
	return tc, nil
}

// settings are the data settings recorded in run.json; a resume must repeat them. The label
// stores are compared by identity, not by place: a store moved (or named by a relative path
// once and an absolute one the next time) is the same store, and another store at the same
// path is refused, naming the store and the key. Their paths are recorded in inputs.
type settings struct {
	LabelsStore     *storeID `json:"labels_store,omitempty"`
	EvalLabelsStore *storeID `json:"eval_labels_store,omitempty"`
	// Labels and EvalLabels are the stores' paths as a run.json written before the identities
	// recorded them; such a run is resumed by path (see legacySettings).
	Labels     string `json:"labels,omitempty"`
	EvalLabels string `json:"eval_labels,omitempty"`
	Data       string `json:"data"`
	EvalData   string `json:"eval_data,omitempty"`
	Limit      int    `json:"limit,omitempty"`
	// EvalLimit is always written: a run.json without it is an older train's, whose Limit
	// limited the eval set too (see legacyPlaces).
	EvalLimit     int    `json:"eval_limit"`
	Seed          uint64 `json:"seed"`
	ViewsPerImage int    `json:"views_per_image"`
	// RepeatedAug is Options.RepeatedAug, absent when off (so runs without it record what they
	// recorded before); ViewsPerImage is then the same n.
	RepeatedAug int       `json:"repeated_aug,omitempty"`
	AugScale    []float64 `json:"aug_scale,omitempty"`
	Mean        []float64 `json:"mean"`
	Std         []float64 `json:"std"`
	// The train-time augmentations, absent when off (so runs without them record what they
	// recorded before): RandAugment in its canonical spelling (dataset.RandAugment.String).
	RandAugment string             `json:"randaugment,omitempty"`
	EraseProb   float64            `json:"erase_prob,omitempty"`
	Mix         *dataset.MixConfig `json:"mix,omitempty"`
	// Init is the file the weights came from (Options.Init), by content.
	Init *initRecord `json:"init,omitempty"`
}

// storeID identifies a label store by its content: the teacher that labelled it, the dataset
// it labels and its manifest, which lists every shard with its checksum (so a store
// re-precomputed, extended or merged differently is another store).
type storeID struct {
	TeacherSHA256  string `json:"teacher_sha256"`
	DatasetIDHash  string `json:"dataset_id_hash"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// inputs are where the run's label stores are, as absolute, cleaned paths: recorded in run.json
// but not compared on resume; a resume logs an input that moved.
type inputs struct {
	Labels     string `json:"labels"`
	EvalLabels string `json:"eval_labels,omitempty"`
	Init       string `json:"init,omitempty"`
}

// resolveSettings fills in j's settings and inputs, in the form the run.json in Out records
// them when an older train wrote it (see legacySettings).
func (j *Job) resolveSettings() error {
	o := j.o
	views := o.ViewsPerImage
	if views == 0 {
		views = 1
	}
	st := settings{Data: o.Data, EvalData: o.EvalData, Limit: o.Limit, EvalLimit: o.EvalLimit, Seed: o.Seed, ViewsPerImage: views,
		RepeatedAug: o.RepeatedAug, Mean: j.train.Mean(), Std: j.train.Std()}
	if o.AugScale != [2]float64{} {
		st.AugScale = o.AugScale[:]
	}
	if a := j.augment; a.RandAugment != nil {
		st.RandAugment = a.RandAugment.String()
	}
	st.EraseProb = j.augment.EraseProb
	if j.augment.Mix.On() {
		mc := j.augment.Mix
		st.Mix = &mc
	}
	var in inputs
	var err error
	if in.Labels, err = filepath.Abs(o.Labels); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if st.LabelsStore, err = identify(o.Labels, j.train.Meta()); err != nil {
		return err
	}
	if o.EvalLabels != "" {
		if in.EvalLabels, err = filepath.Abs(o.EvalLabels); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if st.EvalLabelsStore, err = identify(o.EvalLabels, j.eval.Meta()); err != nil {
			return err
		}
	}
	if o.Resume {
		var rec settings
		if ok, err := readSettings(o.Out, &rec); err == nil && ok && rec.LabelsStore == nil && rec.Labels != "" {
			o.Log(fmt.Sprintf("%s records its label stores by path only (an older train wrote it): resuming against %s "+
				"without checking that it is the store the run began with", filepath.Join(o.Out, RunFile), in.Labels))
			st = legacySettings(st, rec, in)
		}
	}
	j.settings, j.inputs = st, in
	return nil
}

// identify returns the identity of the label store at path (a store folder or its manifest
// file, as store.OpenReader takes it) whose metadata is meta.
func identify(path string, meta schema.Metadata) (*storeID, error) {
	sum, err := store.ManifestSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("label store identity: %w", err)
	}
	return &storeID{TeacherSHA256: meta.Teacher.SHA256, DatasetIDHash: meta.Dataset.IDHash, ManifestSHA256: sum}, nil
}

// legacySettings turns st into the form a run.json written before store identities recorded
// (rec): the stores' paths instead of their identities, the recorded path kept where it names
// the same folder as now (resolved against the current folder), so that such a run resumes
// by path as it did, and refuses another path naming it.
func legacySettings(st settings, rec settings, in inputs) settings {
	same := func(recorded, now string) string {
		if recorded == "" || now == "" {
			return now
		}
		if abs, err := filepath.Abs(recorded); err == nil && abs == now {
			return recorded
		}
		return now
	}
	st.LabelsStore, st.EvalLabelsStore = nil, nil
	st.Labels, st.EvalLabels = same(rec.Labels, in.Labels), same(rec.EvalLabels, in.EvalLabels)
	return st
}

// Short runs and small images: below these DeiT's random-resized-crop range (torchvision's
// 0.08–1, for 224-pixel ImageNet photos over 300 epochs) costs accuracy (issue 16: 2 epochs over
// 6,400 Fashion-MNIST images, 61.4% fused with whole images against 43.3% with 0.08–1 and 44.2%
// with 0.35–1).
const (
	shortRunEpochs = 30 // fewer epochs: whole-image views, flips only
	smallImage     = 64 // a smaller side: crops of at least 0.35 of the area
)

// DefaultAugScale is the area range of a fixed-teacher run's train-time random crops when none
// is given, chosen from the student's image side and the run's epochs, and a log line saying
// what was chosen and why ("" and a zero range: the store's own range, as recorded in it). A
// store with stored views replays them and ignores it.
func DefaultAugScale(size, epochs int) ([2]float64, string) {
	switch {
	case epochs < shortRunEpochs:
		return [2]float64{1, 1}, fmt.Sprintf("a %d-epoch run (under %d): a fixed-teacher store's train-time views are whole images "+
			"with their flips, no random crops (give an augmentation scale to crop)", epochs, shortRunEpochs)
	case size < smallImage:
		return [2]float64{0.35, 1}, fmt.Sprintf("%d-pixel images (under %d): a fixed-teacher store's train-time crops keep 0.35–1 "+
			"of the area, a recognisable object (give an augmentation scale to change it)", size, smallImage)
	}
	return [2]float64{}, ""
}
