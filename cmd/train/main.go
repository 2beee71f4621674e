// Command train trains a DeiT student from a label store (stage two of deitkd).
//
//	train --labels labels/ --data idx:fashion-mnist/train --eval-data idx:fashion-mnist/t10k --out run/
//	train --analyze run/checkpoint.ckpt --labels labels/ --eval-data idx:fashion-mnist/t10k
//
// Exit status: 0 done, 1 a fatal error (a label store that does not fit, a non-finite loss,
// an interruption: rerun with --resume to continue), 2 a usage error.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/traindata"
	"github.com/deitkd/deitkd/traindata/loop"
)

const (
	exitOK    = 0
	exitFatal = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	stop()
	os.Exit(code)
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
	Labels        string    `json:"labels,omitempty"`
	EvalLabels    string    `json:"eval_labels,omitempty"`
	Data          string    `json:"data"`
	EvalData      string    `json:"eval_data,omitempty"`
	Limit         int       `json:"limit,omitempty"`
	Seed          uint64    `json:"seed"`
	ViewsPerImage int       `json:"views_per_image"`
	AugScale      []float64 `json:"aug_scale,omitempty"`
	Mean          []float64 `json:"mean"`
	Std           []float64 `json:"std"`
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
// but not compared on resume (loop.Options.Inputs).
type inputs struct {
	Labels     string `json:"labels"`
	EvalLabels string `json:"eval_labels,omitempty"`
}

// identify returns the identity of the label store at path (a store folder or its manifest
// file, as store.OpenReader takes it) whose metadata is meta.
func identify(path string, meta schema.Metadata) (*storeID, error) {
	man := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		man = filepath.Join(path, "manifest.json")
	}
	b, err := os.ReadFile(man)
	if err != nil {
		return nil, fmt.Errorf("label store identity: %w", err)
	}
	sum := sha256.Sum256(b)
	return &storeID{TeacherSHA256: meta.Teacher.SHA256, DatasetIDHash: meta.Dataset.IDHash, ManifestSHA256: hex.EncodeToString(sum[:])}, nil
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

// run parses args, trains (or analyses) and returns the exit code. tty says whether stderr is
// a terminal (progress bars) or not (a plain line every few seconds).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
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
	var (
		labels     = fs.String("labels", "", "label store `dir` made by precompute from --data")
		data       = fs.String("data", "", "training images: a class-folder `DIR`, list:FILE or idx:PREFIX")
		evalData   = fs.String("eval-data", "", "evaluation images (`SRC`): view 0, the centre crop, of each, after every epoch")
		evalLabels = fs.String("eval-labels", "", "optional label store `dir` of --eval-data (its labels, boxes and teacher accuracy)")
		limit      = fs.Int("limit", 0, "use only the first `n` images of each source (0: all)")
		out        = fs.String("out", "", "run `dir`: metrics.jsonl, checkpoint.ckpt, run.json")
		resume     = fs.Bool("resume", false, "continue the run in --out from its checkpoint, exactly (same flags)")
		analyze    = fs.String("analyze", "", "print the cosine between class and distillation tokens after each block of the checkpoint `file`, averaged over --eval-data, and exit")

		preset      = fs.String("preset", "fm-tiny", "architecture: fm-tiny (28×28×1, P=4, D=64, L=4, H=4), deit-tiny (224, P=16, D=192, L=12, H=3), deit-small (D=384, H=6)")
		img         = fs.Int("img", 0, "input side in pixels (0: the preset's); views are rendered at this size")
		channels    = fs.Int("channels", 0, "input channels (0: the preset's); must match the label store")
		patch       = fs.Int("patch", 0, "patch side (0: the preset's)")
		dim         = fs.Int("dim", 0, "embedding width (0: the preset's)")
		depth       = fs.Int("depth", 0, "transformer blocks (0: the preset's)")
		heads       = fs.Int("heads", 0, "attention heads (0: the preset's)")
		mlpRatio    = fs.Float64("mlp-ratio", 0, "MLP hidden width over the embedding width (0: the preset's)")
		noDistToken = fs.Bool("no-dist-token", false, "a plain ViT with one head (baselines; implies --distill none)")

		recipe     = fs.String("recipe", "default", "default (tuned for short runs: lr 1e-3·batch/128, warm-up 3% of steps, wd 0.05, clip 1) or deit (lr 5e-4·batch/512, 5 warm-up epochs, wd 0.05, drop-path 0.1, smoothing 0.1)")
		epochs     = fs.Int("epochs", 5, "epochs (0: evaluate and export the initial model, train nothing)")
		batch      = fs.Int("batch", 128, "rows (image views) per step")
		lr         = fs.Float64("lr", 0, "peak learning rate (0: the recipe's)")
		minLR      = fs.Float64("min-lr", 0, "learning rate at the end of the cosine decay (unset: the recipe's, 1e-5)")
		warmup     = fs.String("warmup", "", "linear warm-up: a fraction of all steps (0.05) or epochs with the suffix ep (2ep); 0: none; empty: the recipe's")
		wd         = fs.Float64("wd", 0, "AdamW weight decay, not on biases, norms, tokens or positions (0 given: none; unset: the recipe's)")
		dropPath   = fs.Float64("drop-path", 0, "stochastic depth of the last block (unset: the recipe's, 0 or 0.1)")
		clip       = fs.Float64("clip", 0, "global gradient-norm clip (0 given: none; unset: the recipe's)")
		weightInit student.WeightInit
		seed       = fs.Uint64("seed", 0, "seed of the initialisation, drop-path, the data order and the views drawn")
		workers    = fs.Int("workers", runtime.NumCPU(), "goroutines rendering batches")
		distill    = fs.String("distill", "hard", "none (labels only), soft (KL to the teacher's softmax at τ) or hard (CE to the teacher's argmax)")
		alpha      = fs.Float64("alpha", 0.5, "weight of the teacher term (0: the ground-truth term only)")
		tau        = fs.Float64("tau", 1.0, "soft distillation temperature")
		smoothing  = fs.Float64("smoothing", 0, "label smoothing of the ground-truth term (0 given: none; unset: the recipe's, 0 or 0.1)")
		klNorm     = fs.String("kl-norm", "batch", "soft loss: batch (KL summed over classes, averaged over the batch: the paper, timm) or numel (divided by B·K: DeiT's code)")
		fuse       = fs.String("fuse", "probs", "eval fusion of the two heads: probs (mean of the softmaxes: the paper) or logits (mean of the logits: DeiT's code)")
		views      = fs.Int("views-per-image", 1, "distinct stored views of each image per epoch, next to each other in the batches")
		augScale   = fs.String("aug-scale", "", "single-view store: area range `a,b` of the train-time random crops (default: the store's --scale)")
		mean       = fs.String("mean", "", "normalisation mean per channel, `values` comma-separated (default: the label store's; must match it)")
		std        = fs.String("std", "", "normalisation std per channel, `values` comma-separated (default: the label store's; must match it)")
		cacheMB    = fs.Int64("cache-mb", 2048, "decoded images kept in memory, MiB (0: none)")
		exports    = fs.String("export", "", "after training, write the student into --out as `formats`, comma-separated: onnx (student.onnx), safetensors (student.safetensors, timm's DeiT names)")
	)
	fs.Var(&weightInit, "weight-init", "initial weights: timm (trunc-normal 0.02, timm's DeiT) or torch (PyTorch's layer defaults, uniform ±1/√fan_in); unset: the recipe's")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	logf := func(s string) { fmt.Fprintln(stderr, "train:", s) }
	// A value no run can use is a usage error naming the flag as given; a zero keeps the
	// meaning its flag documents. The comparisons are written to be false for NaN.
	for _, c := range []struct {
		bad        bool
		flag, want string
	}{
		{*epochs < 0, "epochs", "≥ 0 (0: evaluate the initial model, train nothing)"},
		{*batch < 1, "batch", "≥ 1"},
		{*views < 1, "views-per-image", "≥ 1"},
		{*workers < 0, "workers", "≥ 1 (0: one per CPU)"},
		{*limit < 0, "limit", "≥ 0 (0: all)"},
		{*cacheMB < 0, "cache-mb", "≥ 0 (0: no cache)"},
		{!(*lr >= 0), "lr", "≥ 0 (0: the recipe's)"},
		{!(*minLR >= 0), "min-lr", "≥ 0"},
		{!(*wd >= 0), "wd", "≥ 0 (0: none)"},
		{!(*clip >= 0), "clip", "≥ 0 (0: no clipping)"},
		{!(*dropPath >= 0 && *dropPath < 1), "drop-path", "in [0, 1)"},
		{!(*alpha >= 0 && *alpha <= 1), "alpha", "in [0, 1]"},
		{!(*tau > 0), "tau", "> 0"},
		{!(*smoothing >= 0 && *smoothing < 1), "smoothing", "in [0, 1)"},
		{!slices.Contains([]string{"none", "soft", "hard"}, *distill), "distill", "none, soft or hard"},
		{!slices.Contains([]string{"batch", "numel"}, *klNorm), "kl-norm", "batch or numel"},
	} {
		if c.bad {
			return usage(stderr, fmt.Errorf("--%s %s: want %s", c.flag, fs.Lookup(c.flag).Value, c.want))
		}
	}

	meanV, err := parseFloats(*mean)
	if err != nil {
		return usage(stderr, fmt.Errorf("--mean: %w", err))
	}
	stdV, err := parseFloats(*std)
	if err != nil {
		return usage(stderr, fmt.Errorf("--std: %w", err))
	}
	var scale [2]float64
	if *augScale != "" {
		v, err := parseFloats(*augScale)
		if err != nil || len(v) != 2 {
			return usage(stderr, fmt.Errorf("--aug-scale %q: want a,b", *augScale))
		}
		scale = [2]float64{v[0], v[1]}
	}
	fuseMode := map[string]string{"probs": "softmax", "logits": "logits"}[*fuse]
	if fuseMode == "" {
		return usage(stderr, fmt.Errorf("--fuse %q: want probs or logits", *fuse))
	}

	cfg, err := student.Preset(*preset)
	if err != nil {
		return usage(stderr, err)
	}
	override := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	override(&cfg.ImageSize, *img)
	override(&cfg.Channels, *channels)
	override(&cfg.Patch, *patch)
	override(&cfg.Dim, *dim)
	override(&cfg.Depth, *depth)
	override(&cfg.Heads, *heads)
	if *mlpRatio != 0 {
		cfg.MLPRatio = *mlpRatio
	}
	cfg.NoDistToken = *noDistToken

	if *analyze != "" {
		return runAnalyze(ctx, stdout, stderr, *analyze, *evalData, *evalLabels, *labels, *limit, *batch, *workers, meanV, stdV)
	}
	if *labels == "" || *data == "" || *out == "" {
		return usage(stderr, errors.New("--labels, --data and --out are required"))
	}
	if *evalLabels != "" && *evalData == "" {
		return usage(stderr, errors.New("--eval-labels needs --eval-data"))
	}

	// The recipe is filled in here, once: the named recipe's values, then every flag given
	// (and those with a flag default: --epochs, --batch, --seed, --distill, --alpha, --tau,
	// --kl-norm), each taken literally; only --lr 0 keeps the recipe's rate.
	if *recipe != "default" && *recipe != "deit" {
		return usage(stderr, fmt.Errorf("--recipe %q: want default or deit", *recipe))
	}
	tc, err := student.NewRecipe(map[string]string{"default": "short", "deit": "deit"}[*recipe], *batch)
	if err != nil {
		return usage(stderr, err)
	}
	tc.Epochs, tc.Seed = *epochs, *seed
	tc.Loss = student.LossConfig{Distill: *distill, Alpha: *alpha, Tau: *tau, Smoothing: tc.Loss.Smoothing, KLNorm: *klNorm}
	if *lr != 0 {
		tc.LR = *lr
	}
	for _, f := range []struct {
		name string
		dst  *float64
		v    float64
	}{{"min-lr", &tc.MinLR, *minLR}, {"wd", &tc.WD, *wd}, {"clip", &tc.Clip, *clip}, {"smoothing", &tc.Loss.Smoothing, *smoothing}} {
		if set[f.name] {
			*f.dst = f.v
		}
	}
	if set["weight-init"] {
		tc.WeightInit = weightInit
	}
	if *noDistToken && !set["distill"] {
		tc.Loss.Distill = "none"
	}
	if err := parseWarmup(*warmup, &tc); err != nil {
		return usage(stderr, err)
	}
	// The cosine decays from --lr to --min-lr: one above the other would make it rise.
	if d := tc; d.MinLR > d.LR {
		given := func(name string) string {
			if set[name] && (name != "lr" || *lr != 0) {
				return "--" + name
			}
			return "the recipe's"
		}
		return usage(stderr, fmt.Errorf("--min-lr: the final learning rate %g (%s) is above the peak %g (%s): want --min-lr ≤ --lr",
			d.MinLR, given("min-lr"), d.LR, given("lr")))
	}
	cfg.DropPath = *dropPath
	if tc.Recipe == "deit" && !set["drop-path"] {
		cfg.DropPath = student.DeitDropPath
	}

	cacheBytes := *cacheMB << 20
	if cacheBytes == 0 {
		cacheBytes = -1 // traindata: negative is no cache, 0 its default
	}
	trainSet, err := traindata.Open(ctx, traindata.Options{Labels: *labels, Data: *data, Limit: *limit,
		Size: cfg.WithDefaults().ImageSize, Channels: cfg.WithDefaults().Channels, Mean: meanV, Std: stdV,
		Batch: *batch, ViewsPerImage: *views, Workers: *workers, Seed: *seed, Tau: *tau, Probs: tc.Loss.Distill == "soft",
		AugScale: scale, CacheBytes: cacheBytes, Log: logf})
	if err != nil {
		return fatal(stderr, err)
	}
	cfg.Classes = trainSet.Classes()
	var evalSet *traindata.Set
	if *evalData != "" {
		evalSet, err = traindata.OpenEval(ctx, traindata.Options{Labels: *evalLabels, Data: *evalData, Limit: *limit,
			Size: trainSet.Size(), Channels: trainSet.Channels(), Mean: trainSet.Mean(), Std: trainSet.Std(), Classes: trainSet.Classes(),
			Batch: *batch, Workers: *workers, CacheBytes: cacheBytes, Log: logf}, trainSet.Meta())
		if err != nil {
			return fatal(stderr, err)
		}
	} else {
		logf("no --eval-data: no accuracy is measured")
	}
	st := settings{Data: *data, EvalData: *evalData, Limit: *limit, Seed: *seed, ViewsPerImage: *views, Mean: trainSet.Mean(), Std: trainSet.Std()}
	if scale != [2]float64{} {
		st.AugScale = scale[:]
	}
	var in inputs
	if in.Labels, err = filepath.Abs(*labels); err != nil {
		return fatal(stderr, err)
	}
	if st.LabelsStore, err = identify(*labels, trainSet.Meta()); err != nil {
		return fatal(stderr, err)
	}
	if *evalLabels != "" {
		if in.EvalLabels, err = filepath.Abs(*evalLabels); err != nil {
			return fatal(stderr, err)
		}
		if st.EvalLabelsStore, err = identify(*evalLabels, evalSet.Meta()); err != nil {
			return fatal(stderr, err)
		}
	}
	if *resume {
		var rec settings
		if ok, err := loop.ReadSettings(*out, &rec); err == nil && ok && rec.LabelsStore == nil && rec.Labels != "" {
			logf(fmt.Sprintf("%s records its label stores by path only (an older train wrote it): resuming against %s "+
				"without checking that it is the store the run began with", filepath.Join(*out, loop.RunFile), in.Labels))
			st = legacySettings(st, rec, in)
		}
	}
	c := cfg.WithDefaults()
	logf(fmt.Sprintf("student %s: %d×%d×%d, patch %d, dim %d, depth %d, heads %d, %d classes, dist token %v; BLAS %s",
		*preset, c.ImageSize, c.ImageSize, c.Channels, c.Patch, c.Dim, c.Depth, c.Heads, c.Classes, !c.NoDistToken, student.BLAS))
	logf(fmt.Sprintf("data: %d images × %d view(s) per epoch, %d steps of %d; distill %s",
		trainSet.Len(), *views, trainSet.BatchesPerEpoch(), *batch, tc.Loss.Distill))

	sum, err := loop.Train(ctx, loop.Options{Train: trainSet, Eval: evalSet, Model: cfg, Recipe: tc, Fuse: fuseMode, Out: *out,
		Resume: *resume, Settings: st, Inputs: in, Progress: loop.ProgressPrinter(stderr, tty, 5*time.Second), Log: logf})
	if sum != nil && len(sum.Epochs) > 0 {
		sum.WriteTable(stdout)
	}
	if err == nil && *exports != "" {
		// The checkpoint records the preprocessing and class names, as for export.
		err = writeExports(stderr, *exports, sum.Checkpoint, *out, export.Options{Fuse: fuseMode})
	}
	if err != nil {
		if errors.Is(err, loop.ErrOptions) {
			return usage(stderr, err)
		}
		if errors.Is(err, context.Canceled) {
			return fatal(stderr, fmt.Errorf("interrupted; rerun the same command with --resume to continue from the last finished epoch"))
		}
		return fatal(stderr, err)
	}
	return exitOK
}

func runAnalyze(ctx context.Context, stdout, stderr io.Writer, ckpt, evalData, evalLabels, labels string, limit, batch, workers int, mean, std []float64) int {
	if evalData == "" || (evalLabels == "" && labels == "") {
		return usage(stderr, errors.New("--analyze needs --eval-data and a label store for its preprocessing (--eval-labels or --labels)"))
	}
	m, err := student.LoadModel(ckpt)
	if err != nil {
		return fatal(stderr, err)
	}
	c := m.Config()
	o := traindata.Options{Labels: evalLabels, Data: evalData, Limit: limit, Size: c.ImageSize, Channels: c.Channels,
		Classes: c.Classes, Mean: mean, Std: std, Batch: batch, Workers: workers}
	var ref schema.Metadata // preprocessing and classes when the eval set has no store of its own
	if evalLabels == "" {
		r, err := store.OpenReader(labels)
		if err != nil {
			return fatal(stderr, err)
		}
		ref = r.Meta
	}
	set, err := traindata.OpenEval(ctx, o, ref)
	if err != nil {
		return fatal(stderr, err)
	}
	cos, err := loop.Analyze(ctx, ckpt, set)
	if err != nil {
		return fatal(stderr, err)
	}
	loop.WriteAnalysis(stdout, cos)
	return exitOK
}

// writeExports writes the checkpoint's model in each of formats into dir.
func writeExports(stderr io.Writer, formats, ckpt, dir string, o export.Options) error {
	m, err := student.LoadModel(ckpt)
	if err != nil {
		return err
	}
	for _, f := range strings.Split(formats, ",") {
		path, err := export.WriteFile(dir, strings.TrimSpace(f), m, o)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "train: exported", path)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// parseWarmup reads "0.05" (a fraction of all steps) or "2ep" (epochs) into tc, replacing the
// recipe's warm-up of either kind; "" keeps it.
func parseWarmup(s string, tc *student.TrainConfig) error {
	if s == "" {
		return nil
	}
	num, ep := strings.CutSuffix(strings.TrimSpace(s), "ep")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || (!ep && v >= 1) {
		return fmt.Errorf("--warmup %q: want a fraction of all steps in [0, 1) like 0.05, or epochs like 2ep", s)
	}
	if ep {
		tc.WarmupFrac, tc.WarmupEpochs = 0, v
	} else {
		tc.WarmupFrac, tc.WarmupEpochs = v, 0
	}
	return nil
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

func usage(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "train:", err)
	return exitUsage
}

func fatal(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "train:", err)
	return exitFatal
}
