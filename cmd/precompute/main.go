// Command precompute runs an ONNX teacher once over every view of every image of a dataset and
// writes its logits to a label store (stage one of deitkd).
//
//	precompute --model teacher.onnx --data imagenet/train --out labels/
//
// A folder lists the files torchvision's ImageFolder lists (IMG_EXTENSIONS, so image_index
// agrees with its index); --extensions .jpg,.png,.gif names other endings, --extensions all takes
// every file. The store records the list, and train lists the folder with it again.
//
// Preprocessing comes from the model's deitkd.preprocess metadata and input shape, and any of
// --resize, --crop, --interp, --mean, --std override it. Where the model carries class names and
// the dataset has class folders, they must agree in order; otherwise --class-map FILE says which
// teacher class each folder is, one "FOLDER<TAB>TEACHER" line per folder, TEACHER a class index
// or name ('#' lines are comments):
//
//	n01440764	0
//	n01443537	goldfish
//
// Exit status: 0 when every image was labelled, 3 when some could not be and were skipped
// (they are in the store's failure log), 1 on a fatal error or an interruption (rerun the same
// command to resume), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
)

// Exit codes.
const (
	exitOK      = 0
	exitFatal   = 1
	exitUsage   = 2
	exitSkipped = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once; finished shards are safe either way
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	stop()
	os.Exit(code)
}

// run parses args, runs precompute and returns the exit code. tty says whether stderr is a
// terminal (a progress bar) or not (a plain line every few seconds).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	var o precompute.Options
	fs := flag.NewFlagSet("precompute", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: precompute --model FILE --data SRC --out DIR [flags]\n\n"+
			"Labels every view of every image of SRC (a class-folder tree DIR, list:FILE, or idx:PREFIX)\n"+
			"with the ONNX teacher FILE and writes a label store to DIR. Rerun the same command to resume.\n"+
			"Exit status: 0 all labelled, 3 some images failed and were skipped, 1 fatal, 2 usage.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Model, "model", "", "ONNX teacher `file` (NCHW float32 input, N×K logits)")
	fs.StringVar(&o.Data, "data", "", "dataset: a class-folder `DIR`, list:FILE (path[<TAB>label] lines) or idx:PREFIX (MNIST files)")
	extensions := fs.String("extensions", "", "a folder --data lists files ending in one of these `exts`, comma-separated, dots optional, any case (.jpg,.png,.gif), or all: every file (default: torchvision's IMG_EXTENSIONS, .jpg,.jpeg,.png,.ppm,.bmp,.pgm,.tif,.tiff,.webp, as ImageFolder lists)")
	fs.StringVar(&o.Out, "out", "", "label store `dir` (created, or resumed if it holds the same configuration)")
	fs.IntVar(&o.Batch, "batch", 64, "rows (image views) per teacher run")
	fs.IntVar(&o.Workers, "workers", 0, "decode/preprocess workers (0: every core)")
	fs.IntVar(&o.Threads, "threads", 0, "teacher intra-op threads (0: all cores on CPU, 1 with --provider cuda)")
	fs.StringVar(&o.Provider, "provider", "cpu", "execution provider: cpu or cuda")
	fs.IntVar(&o.Device, "device", 0, "CUDA device id")
	fs.BoolVar(&o.NoFallback, "no-fallback", false, "fail if CUDA cannot start instead of warning and running on CPU")
	fs.StringVar(&o.CUDNNSearch, "cudnn-search", "", "CUDA: cuDNN convolution algorithm search, EXHAUSTIVE, HEURISTIC or DEFAULT (empty: ONNX Runtime's, EXHAUSTIVE)")
	fs.Int64Var(&o.GPUMemLimit, "gpu-mem-limit", 0, "CUDA: cap on ONNX Runtime's GPU memory arena in `bytes` (0: none)")
	fs.StringVar(&o.ORTLib, "ort-lib", "", "libonnxruntime.so `path` (default: $DEITKD_ORT_LIB, then the `make setup` cache)")
	fs.StringVar(&o.Output, "output", "", "logits output `name` of a model with several (default: the first 2-D float output)")
	mode := fs.String("store", "full", "what to keep: full (all K logits) or topk (the k largest, their classes, and logsumexp)")
	fs.IntVar(&o.TopK, "topk", 0, "k for --store topk (0: min(10, K))")
	dtype := fs.String("dtype", "float32", "stored logit type: float32 or float16")
	format := fs.String("format", "parquet", "shard file format: parquet or arrow")
	shard := fs.String("shard", "", "`i/n`: this process labels the images whose index ≡ i (mod n)")
	fs.IntVar(&o.ShardRows, "shard-rows", 0, "advanced: rows per store shard file (0: the store's default, 50000)")
	fs.IntVar(&o.Limit, "limit", 0, "label only images with index < `n` (0: all)")
	fs.StringVar(&o.OnError, "on-error", "skip", "an image that cannot be read: skip (log it, exit 3) or fail (exit 1)")
	fs.IntVar(&o.Resize, "resize", 0, "shorter side before the centre crop (default: the model's metadata, else the crop)")
	fs.IntVar(&o.Crop, "crop", 0, "centre crop; must equal the model's input side (default: that side)")
	fs.StringVar(&o.Interpolation, "interp", "", "bilinear or bicubic (default: the model's metadata, else bilinear)")
	mean := fs.String("mean", "", "per-channel `values`, comma-separated: 0.485,0.456,0.406 (default: the model's metadata)")
	std := fs.String("std", "", "per-channel `values`, comma-separated (default: the model's metadata)")
	fs.StringVar(&o.ClassNamesFile, "class-names", "", "`file` of class names, one a line, K lines, for a model without them")
	fs.StringVar(&o.ClassMapFile, "class-map", "", "`file` of FOLDER<TAB>TEACHER lines mapping each dataset class folder to a teacher class index or name")
	fs.IntVar(&o.Views, "views", 1, "views per image: view 0 the centre crop, the others RandomResizedCrop boxes")
	scale := fs.String("scale", "0.08,1", "random views' area fraction range `a,b` (torchvision's; for 28-pixel images 0.35,1 keeps a recognisable object)")
	ratio := fs.String("ratio", "0.75,1.3333333333333333", "random views' aspect ratio range `a,b`")
	flipP := fs.Float64("flip-p", 0.5, "random views' horizontal flip probability")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the random views: each is a pure function of (seed, image index, view)")
	fs.StringVar(&o.ViewsFrom, "views-from", "", "label exactly the images and views (crop boxes, flips) of the finished label store `STORE` again, with this teacher at its input size (same --data; the view flags come from STORE)")
	teacherOff := fs.Bool("teacher-off", false, "measure feeding alone: list, read, decode, resize/crop/normalise and batch view 0 of every image, without the teacher or a store (needs --data and --crop, no --model), and print img/s")
	draft := fs.Bool("jpeg-draft", false, "decode large JPEGs at 1/2, 1/4 or 1/8 scale for --resize as PIL's draft does: faster, slightly different pixels, recorded in the store (--views 1 only)")
	randAugment := fs.String("randaugment", "", "random views: timm's RandAugment `spec` after each crop and flip, e.g. rand-m9-mstd0.5-inc1 (DeiT's); empty: none. Needs --views ≥ 2; the ops are stored per row")
	erase := fs.Float64("erase", 0, "random views: timm's random erasing probability (mode pixel, one box; DeiT: 0.25); 0: none")
	mixup := fs.Float64("mixup", 0, "random views: Mixup's Beta `alpha` (DeiT: 0.8), the partner another image's random view; 0: none")
	cutmix := fs.Float64("cutmix", 0, "random views: CutMix's Beta `alpha` (DeiT: 1.0); 0: none")
	mixP := fs.Float64("mix-p", 1, "probability that a random view is mixed when --mixup or --cutmix is on (timm's mixup_prob)")
	mixSwitch := fs.Float64("mix-switch", 0.5, "probability of CutMix rather than Mixup when both are on (timm's switch_prob)")
	exifTranspose := fs.Bool("exif-transpose", false, "turn each image upright for its EXIF orientation as PIL's ImageOps.exif_transpose does (off: as torchvision), recorded in the store; train decodes the same way")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "precompute: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	o.StoreMode, o.DType, o.Format = schema.Mode(*mode), schema.DType(*dtype), store.Format(*format)
	o.FlipP = *flipP
	if !(o.FlipP >= 0 && o.FlipP <= 1) {
		return usage(stderr, fmt.Errorf("%w: --flip-p %v, want 0..1", precompute.ErrOptions, o.FlipP))
	}
	if o.FlipP == 0 {
		o.FlipP = -1 // Options: 0 means the default, negative never
	}
	var err error
	if *shard != "" {
		if o.Shard, err = precompute.ParseShard(*shard); err != nil {
			return usage(stderr, err)
		}
	}
	if o.Extensions, err = precompute.ParseExtensions(*extensions); err != nil {
		return usage(stderr, err)
	}
	if o.Mean, err = precompute.ParseFloats(*mean); err != nil {
		return usage(stderr, err)
	}
	if o.Std, err = precompute.ParseFloats(*std); err != nil {
		return usage(stderr, err)
	}
	if o.Scale, err = precompute.ParseRange(*scale); err != nil {
		return usage(stderr, err)
	}
	if o.Ratio, err = precompute.ParseRange(*ratio); err != nil {
		return usage(stderr, err)
	}
	if *randAugment != "" {
		ra, err := dataset.ParseRandAugment(*randAugment)
		if err != nil {
			return usage(stderr, fmt.Errorf("%w: --randaugment: %w", precompute.ErrOptions, err))
		}
		o.Augment.RandAugment = &ra
	}
	o.Augment.EraseProb = *erase
	if *mixup != 0 || *cutmix != 0 { // Check refuses a negative or NaN alpha
		o.Augment.Mix = dataset.MixConfig{MixupAlpha: *mixup, CutMixAlpha: *cutmix, Prob: *mixP, SwitchProb: *mixSwitch}
	}
	if o.ViewsFrom != "" {
		// The views are the store's: a view flag given as well is an error, the defaults are not.
		var given []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "views", "seed", "scale", "ratio", "flip-p":
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			return usage(stderr, fmt.Errorf("%w: %s with --views-from: the views come from %s", precompute.ErrOptions, strings.Join(given, ", "), o.ViewsFrom))
		}
		o.Views, o.Seed, o.Scale, o.Ratio, o.FlipP = 0, 0, [2]float64{}, [2]float64{}, 0
	}
	o.CreatedBy = "deitkd precompute"
	if bi, ok := debug.ReadBuildInfo(); ok {
		o.CreatedBy += " " + bi.Main.Version
	}
	o.JPEGDraft = *draft
	o.EXIFTranspose = *exifTranspose
	if *teacherOff {
		return feed(ctx, o, *draft, stdout, stderr)
	}
	o.Warn = func(s string) { fmt.Fprintln(stderr, "precompute: warning:", s) }
	o.Progress = progressPrinter(stderr, tty, 5*time.Second)

	// A first line at once: loading a large teacher and listing a large tree take a while.
	fmt.Fprintf(stderr, "precompute: loading the teacher %s and listing %s\n", o.Model, o.Data)
	job, err := precompute.NewContext(ctx, o)
	if err != nil {
		if errors.Is(err, precompute.ErrOptions) {
			return usage(stderr, err)
		}
		return fatal(stderr, err)
	}
	defer job.Close()
	sum, err := job.Run(ctx)
	writeSummary(stdout, sum)
	if err != nil {
		return fatal(stderr, err)
	}
	if err := job.Close(); err != nil {
		return fatal(stderr, err)
	}
	if sum.Failed > 0 {
		return exitSkipped
	}
	return exitOK
}

// feed runs --teacher-off.
func feed(ctx context.Context, o precompute.Options, draft bool, stdout, stderr io.Writer) int {
	sum, err := precompute.Feed(ctx, precompute.FeedOptions{
		Data: o.Data, Extensions: o.Extensions, Batch: o.Batch, Workers: o.Workers, Limit: o.Limit, Resize: o.Resize, Crop: o.Crop,
		Interpolation: o.Interpolation, Mean: o.Mean, Std: o.Std, Draft: draft,
		EXIFTranspose: o.EXIFTranspose,
	})
	sum.Write(stdout)
	switch {
	case errors.Is(err, precompute.ErrOptions):
		return usage(stderr, err)
	case err != nil:
		return fatal(stderr, err)
	case sum.Failed > 0:
		return exitSkipped
	}
	return exitOK
}

func usage(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "precompute:", strings.TrimPrefix(withFlags(err).Error(), "precompute: "))
	return exitUsage
}

func fatal(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "precompute:", strings.TrimPrefix(withFlags(err).Error(), "precompute: "))
	return exitFatal
}

// flagOf is the flag of each precompute.Options field a precompute.OptionError may name.
// OnError is named only by the image that stopped a run, which its value fail did.
var flagOf = map[string]string{
	"Model": "--model", "Data": "--data", "Out": "--out", "Crop": "--crop", "Views": "--views", "Seed": "--seed",
	"Scale": "--scale", "Ratio": "--ratio", "FlipP": "--flip-p", "ViewsFrom": "--views-from", "JPEGDraft": "--jpeg-draft",
	"Extensions": "--extensions", "ClassMapFile": "--class-map", "OnError": "--on-error fail",
	"Augment": "--randaugment, --erase, --mixup, --cutmix, --mix-p, --mix-switch",
}

// withFlags names, beside an error about options, the flags that set them: precompute names
// its options by field, knowing no flag.
func withFlags(err error) error {
	var oe *precompute.OptionError
	if errors.Is(err, teacher.ErrLibrary) {
		return fmt.Errorf("%w (--ort-lib gives the path)", err)
	}
	if !errors.As(err, &oe) {
		return err
	}
	var flags []string
	for _, f := range oe.Options {
		if name, ok := flagOf[f]; ok {
			flags = append(flags, name)
		}
	}
	if len(flags) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(flags, ", "))
}
