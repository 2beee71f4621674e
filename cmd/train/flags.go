package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
)

// flags are the command's flags, declared on fs; options turns the ones given into train's
// options.
type flags struct {
	fs                                      *flag.FlagSet
	labels, data, evalData, evalLabels, out *string
	limit, evalLimit                        *int
	resume                                  *bool
	analyze                                 *string
	init                                    *string
	initHeads                               initHeads

	preset                                  *string
	img, channels, patch, dim, depth, heads *int
	mlpRatio                                *float64
	noDistToken                             *bool

	recipe                                    student.Recipe
	distill                                   student.Distill
	klNorm                                    student.KLNorm
	fuse                                      student.Fuse
	weightInit                                student.WeightInit
	epochs, batch, workers, views, repeated   *int
	lr, minLR, wd, dropPath, clip, alpha, tau *float64
	smoothing                                 *float64
	warmup, augScale, mean, std, exports      *string
	seed                                      *uint64
	cacheMB                                   *int64

	randAugment                           *string
	erase, mixup, cutmix, mixP, mixSwitch *float64
}

func newFlags(stderr io.Writer) *flags {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: train --labels DIR --data SRC [--eval-data SRC [--eval-labels DIR]] --out DIR [flags]\n"+
			"       train --analyze CKPT --eval-data SRC (--labels DIR | --eval-labels DIR)\n\n"+
			"Trains a DeiT student on the images of SRC (a class-folder tree DIR, list:FILE, or idx:PREFIX) against the\n"+
			"teacher's labels in the label store DIR made by precompute from the same SRC. Rerun with --resume to continue.\n"+
			"Exit status: 0 done, 1 fatal (or a non-finite loss), 2 usage.\n\nflags:\n")
		fs.PrintDefaults()
	}
	f := &flags{fs: fs, recipe: student.RecipeDefault, distill: student.DistillHard, klNorm: student.KLBatch, fuse: student.FuseProbs,
		labels:     fs.String("labels", "", "label store `dir` made by precompute from --data"),
		data:       fs.String("data", "", "training images: a class-folder `DIR`, list:FILE or idx:PREFIX"),
		evalData:   fs.String("eval-data", "", "evaluation images (`SRC`): view 0, the centre crop, of each, after every epoch"),
		evalLabels: fs.String("eval-labels", "", "optional label store `dir` of --eval-data (its labels, boxes and teacher accuracy)"),
		limit:      fs.Int("limit", 0, "use only the first `n` training images (0: all)"),
		evalLimit:  fs.Int("eval-limit", 0, "evaluate on only the first `n` images of --eval-data (0: all)"),
		out:        fs.String("out", "", "run `dir`: metrics.jsonl, checkpoint.ckpt, run.json"),
		resume:     fs.Bool("resume", false, "continue the run in --out from its checkpoint, exactly (same flags)"),
		init:       fs.String("init", "", "start from the weights of `file`: a deitkd checkpoint or a safetensors file with timm's DeiT keys (an export, timm's deit_*_patch16_*); pos_embed resampled to --img's grid; optimiser and schedule fresh"),
		analyze:    fs.String("analyze", "", "print the cosine between class and distillation tokens after each block of the checkpoint `file`, averaged over --eval-data, and exit"),

		preset:      fs.String("preset", "fm-tiny", "architecture: fm-tiny (28×28×1, P=4, D=64, L=4, H=4), deit-tiny (224, P=16, D=192, L=12, H=3), deit-small (D=384, H=6)"),
		img:         fs.Int("img", 0, "input side in pixels (0: the preset's); views are rendered at this size"),
		channels:    fs.Int("channels", 0, "input channels (0: the preset's); must match the label store"),
		patch:       fs.Int("patch", 0, "patch side (0: the preset's)"),
		dim:         fs.Int("dim", 0, "embedding width (0: the preset's)"),
		depth:       fs.Int("depth", 0, "transformer blocks (0: the preset's)"),
		heads:       fs.Int("heads", 0, "attention heads (0: the preset's)"),
		mlpRatio:    fs.Float64("mlp-ratio", 0, "MLP hidden width over the embedding width (0: the preset's)"),
		noDistToken: fs.Bool("no-dist-token", false, "a plain ViT with one head (baselines; implies --distill none)"),

		epochs:      fs.Int("epochs", 5, "epochs (0: evaluate and export the initial model, train nothing)"),
		batch:       fs.Int("batch", 128, "rows (image views) per step"),
		lr:          fs.Float64("lr", 0, "peak learning rate (0: the recipe's)"),
		minLR:       fs.Float64("min-lr", 0, "learning rate at the end of the cosine decay (unset: the recipe's, 1e-5)"),
		warmup:      fs.String("warmup", "", "linear warm-up: a fraction of all steps (0.05) or epochs with the suffix ep (2ep); 0: none; empty: the recipe's"),
		wd:          fs.Float64("wd", 0, "AdamW weight decay, not on biases, norms, tokens or positions (0 given: none; unset: the recipe's)"),
		dropPath:    fs.Float64("drop-path", 0, "stochastic depth of the last block (unset: the recipe's, 0 or 0.1)"),
		clip:        fs.Float64("clip", 0, "global gradient-norm clip (0 given: none; unset: the recipe's)"),
		seed:        fs.Uint64("seed", 0, "seed of the initialisation, drop-path, the data order and the views drawn"),
		workers:     fs.Int("workers", runtime.NumCPU(), "goroutines rendering batches"),
		alpha:       fs.Float64("alpha", 0.5, "weight of the teacher term (0: the ground-truth term only)"),
		tau:         fs.Float64("tau", 1.0, "soft distillation temperature"),
		smoothing:   fs.Float64("smoothing", 0, "label smoothing of the ground-truth term (0 given: none; unset: the recipe's, 0 or 0.1)"),
		views:       fs.Int("views-per-image", 1, "distinct views of each image per epoch, next to each other in the batches (stored ones, or fresh ones against a single-view store); the epoch has this many times the rows"),
		repeated:    fs.Int("repeated-aug", 0, "DeiT's repeated augmentation (timm's RASampler; DeiT: 3): `n` views of each image next to each other, as --views-per-image n, with the epoch cut to the image count; 0: off"),
		augScale:    fs.String("aug-scale", "", "single-view store: area range `a,b` of the train-time random crops (default: the store's --scale)"),
		mean:        fs.String("mean", "", "normalisation mean per channel, `values` comma-separated (default: the label store's; must match it)"),
		std:         fs.String("std", "", "normalisation std per channel, `values` comma-separated (default: the label store's; must match it)"),
		cacheMB:     fs.Int64("cache-mb", 2048, "decoded images kept in memory, MiB (0: none)"),
		randAugment: fs.String("randaugment", "", "single-view store: timm's RandAugment `spec` after each crop and flip, e.g. rand-m9-mstd0.5-inc1 (DeiT's); empty: none (unset: the recipe's)"),
		erase:       fs.Float64("erase", 0, "single-view store: timm's random erasing probability (mode pixel, one box; DeiT: 0.25); 0: none (unset: the recipe's)"),
		mixup:       fs.Float64("mixup", 0, "single-view store: Mixup's Beta `alpha` (DeiT: 0.8); 0: none (unset: the recipe's)"),
		cutmix:      fs.Float64("cutmix", 0, "single-view store: CutMix's Beta `alpha` (DeiT: 1.0); 0: none (unset: the recipe's)"),
		mixP:        fs.Float64("mix-p", 1, "probability that a view is mixed when --mixup or --cutmix is on (timm's mixup_prob)"),
		mixSwitch:   fs.Float64("mix-switch", 0.5, "probability of CutMix rather than Mixup when both are on (timm's switch_prob)"),
		exports:     fs.String("export", "", "after training, write the student into --out as `formats`, comma-separated: onnx (student.onnx), safetensors (student.safetensors, timm's DeiT names)"),
	}
	fs.Var(&f.recipe, "recipe", "default (tuned for short runs: lr 1e-3·batch/128, warm-up 3% of steps, wd 0.05, clip 1), deit (lr 5e-4·batch/512, 5 warm-up epochs, wd 0.05, drop-path 0.1, smoothing 0.1; with a single-view store DeiT's RandAugment rand-m9-mstd0.5-inc1, --erase 0.25, --mixup 0.8, --cutmix 1.0) or finetune (with --init: lr 1e-3·batch/128, warm-up 3%, wd 1e-8, clip 1, cosine to 1e-6)")
	fs.Var(&f.initHeads, "init-heads", "--init with another class count than the label store's: keep (refuse it) or new (re-initialise head and head_dist)")
	fs.Var(&f.distill, "distill", "none (labels only), soft (KL to the teacher's softmax at τ) or hard (CE to the teacher's argmax)")
	fs.Var(&f.klNorm, "kl-norm", "soft loss: batch (KL summed over classes, averaged over the batch: the paper, timm) or numel (divided by B·K: DeiT's code)")
	fs.Var(&f.weightInit, "weight-init", "initial weights: timm (trunc-normal 0.02, timm's DeiT) or torch (PyTorch's layer defaults, uniform ±1/√fan_in); unset: the recipe's")
	fs.Var(&f.fuse, "fuse", "eval fusion of the two heads: probs (mean of the softmaxes: the paper) or logits (mean of the logits: DeiT's code)")
	return f
}

// options checks the flags given and returns them as train's options; an error names the flag
// and the value as given. A zero keeps the meaning its flag documents; the comparisons are
// written to be false for NaN.
func (f *flags) options() (train.Options, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, c := range []struct {
		bad        bool
		flag, want string
	}{
		{*f.epochs < 0, "epochs", "≥ 0 (0: evaluate the initial model, train nothing)"},
		{*f.batch < 1, "batch", "≥ 1"},
		{*f.views < 1, "views-per-image", "≥ 1"},
		{*f.repeated < 0, "repeated-aug", "≥ 0 (0: off)"},
		{*f.workers < 0, "workers", "≥ 1 (0: one per CPU)"},
		{*f.limit < 0, "limit", "≥ 0 (0: all)"},
		{*f.evalLimit < 0, "eval-limit", "≥ 0 (0: all)"},
		{*f.cacheMB < 0, "cache-mb", "≥ 0 (0: no cache)"},
		{!(*f.lr >= 0), "lr", "≥ 0 (0: the recipe's)"},
		{!(*f.minLR >= 0), "min-lr", "≥ 0"},
		{!(*f.wd >= 0), "wd", "≥ 0 (0: none)"},
		{!(*f.clip >= 0), "clip", "≥ 0 (0: no clipping)"},
		{!(*f.dropPath >= 0 && *f.dropPath < 1), "drop-path", "in [0, 1)"},
		{!(*f.alpha >= 0 && *f.alpha <= 1), "alpha", "in [0, 1]"},
		{!(*f.tau > 0), "tau", "> 0"},
		{!(*f.smoothing >= 0 && *f.smoothing < 1), "smoothing", "in [0, 1)"},
		{!(*f.erase >= 0 && *f.erase <= 1), "erase", "a probability in [0, 1] (0: none)"},
		{!(*f.mixup >= 0) || math.IsInf(*f.mixup, 0), "mixup", "an alpha ≥ 0 (0: none)"},
		{!(*f.cutmix >= 0) || math.IsInf(*f.cutmix, 0), "cutmix", "an alpha ≥ 0 (0: none)"},
		{!(*f.mixP >= 0 && *f.mixP <= 1), "mix-p", "a probability in [0, 1]"},
		{!(*f.mixSwitch >= 0 && *f.mixSwitch <= 1), "mix-switch", "a probability in [0, 1]"},
	} {
		if c.bad {
			return train.Options{}, fmt.Errorf("--%s %s: want %s", c.flag, f.fs.Lookup(c.flag).Value, c.want)
		}
	}
	if *f.repeated > 0 && *f.views > 1 {
		return train.Options{}, fmt.Errorf("--repeated-aug %d with --views-per-image %d: repeated augmentation is --views-per-image "+
			"with the epoch cut to the image count; give one", *f.repeated, *f.views)
	}
	o := train.Options{Labels: *f.labels, Data: *f.data, EvalData: *f.evalData, EvalLabels: *f.evalLabels, Limit: *f.limit, EvalLimit: *f.evalLimit,
		Out: *f.out, Resume: *f.resume, Preset: *f.preset, Recipe: f.recipe, Epochs: *f.epochs, Batch: *f.batch, Seed: *f.seed,
		LR: *f.lr, Alpha: *f.alpha, Tau: *f.tau, KLNorm: f.klNorm, Fuse: f.fuse, WeightInit: f.weightInit, ViewsPerImage: *f.views, RepeatedAug: *f.repeated, Workers: *f.workers,
		CacheBytes: *f.cacheMB << 20, Init: *f.init, NewHeads: bool(f.initHeads)}
	o.Arch.ImageSize, o.Arch.Channels, o.Arch.Patch, o.Arch.Dim, o.Arch.Depth, o.Arch.Heads = *f.img, *f.channels, *f.patch, *f.dim, *f.depth, *f.heads
	o.Arch.MLPRatio, o.Arch.NoDistToken = *f.mlpRatio, *f.noDistToken
	for _, p := range []struct {
		name string
		dst  **float64
		v    *float64
	}{{"min-lr", &o.MinLR, f.minLR}, {"wd", &o.WD, f.wd}, {"clip", &o.Clip, f.clip}, {"smoothing", &o.Smoothing, f.smoothing}, {"drop-path", &o.DropPath, f.dropPath}} {
		if set[p.name] {
			*p.dst = p.v
		}
	}
	if set["distill"] {
		o.Distill = &f.distill
	}
	var err error
	if o.Warmup, err = parseWarmup(*f.warmup); err != nil {
		return o, err
	}
	if o.Mean, err = parseFloats(*f.mean); err != nil {
		return o, fmt.Errorf("--mean: %w", err)
	}
	if o.Std, err = parseFloats(*f.std); err != nil {
		return o, fmt.Errorf("--std: %w", err)
	}
	if *f.augScale != "" {
		v, err := parseFloats(*f.augScale)
		if err != nil || len(v) != 2 {
			return o, fmt.Errorf("--aug-scale %q: want a,b", *f.augScale)
		}
		o.AugScale = [2]float64{v[0], v[1]}
	}
	if *f.randAugment != "" {
		ra, err := dataset.ParseRandAugment(*f.randAugment)
		if err != nil {
			return o, fmt.Errorf("--randaugment: %w", err)
		}
		o.RandAugment = &ra
	}
	if set["randaugment"] && *f.randAugment == "" {
		o.RandAugment = &dataset.RandAugment{} // none, over the recipe's
	}
	for _, p := range []struct {
		name string
		dst  **float64
		v    *float64
	}{{"erase", &o.EraseProb, f.erase}, {"mixup", &o.MixupAlpha, f.mixup}, {"cutmix", &o.CutMixAlpha, f.cutmix},
		{"mix-p", &o.MixProb, f.mixP}, {"mix-switch", &o.MixSwitch, f.mixSwitch}} {
		if set[p.name] {
			*p.dst = p.v
		}
	}
	if (set["mixup"] || set["cutmix"]) && !set["mix-p"] {
		o.MixProb = f.mixP // timm's mixup_prob 1 with mixing asked for
	}
	if (set["mixup"] || set["cutmix"]) && !set["mix-switch"] {
		o.MixSwitch = f.mixSwitch
	}
	if *f.exports != "" {
		o.Export = strings.Split(*f.exports, ",")
	}
	return o, nil
}

// initHeads is --init-heads: keep (false) or new (true).
type initHeads bool

func (h *initHeads) String() string {
	if *h {
		return "new"
	}
	return "keep"
}

func (h *initHeads) Set(s string) error {
	switch s {
	case "keep", "new":
		*h = s == "new"
		return nil
	}
	return fmt.Errorf("want keep or new")
}

// parseWarmup reads "0.05" (a fraction of all steps) or "2ep" (epochs); "" is unset (nil).
func parseWarmup(s string) (*train.Warmup, error) {
	if s == "" {
		return nil, nil
	}
	num, ep := strings.CutSuffix(strings.TrimSpace(s), "ep")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || (!ep && v >= 1) {
		return nil, fmt.Errorf("--warmup %q: want a fraction of all steps in [0, 1) like 0.05, or epochs like 2ep", s)
	}
	if ep {
		return &train.Warmup{Epochs: v}, nil
	}
	return &train.Warmup{Frac: v}, nil
}

func parseFloats(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, v)
	}
	return out, nil
}
