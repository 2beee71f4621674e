// Command reproduce checks DeiT's distillation findings at small scale on Fashion-MNIST and
// writes the report: `make reproduce` (docs/results.md and docs/results/*.png) and
// `make reproduce-quick` (the same cells on 2,000 images for 2 epochs, into OUT/results.md).
//
//	reproduce [--quick] [--out DIR] [--report FILE] [--plots DIR] [--jobs N] ...
//
// It runs bin/precompute and bin/train (build them first: go build -o bin/ ./cmd/...), one
// output folder per job under --out; a rerun skips the finished jobs, so an interrupted
// reproduction continues where it stopped. Exit status: 0 report written, 1 a job failed
// (the report is still written with what finished), 2 usage.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/reproduce"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reproduce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick      = fs.Bool("quick", false, "the reduced reproduction: every cell on 2,000 images for 2 epochs (under 15 minutes on 2 cores)")
		data       = fs.String("data", "/usr/share/datasets/fashion-mnist", "folder with Fashion-MNIST's four IDX files")
		out        = fs.String("out", "", "jobs' folder (default out/reproduce, or out/reproduce-quick with --quick)")
		report     = fs.String("report", "", "report file (default docs/results.md, or OUT/results.md with --quick)")
		plots      = fs.String("plots", "", "folder of the report's PNGs (default the report's name without .md)")
		bin        = fs.String("bin", "bin", "folder with the precompute and train binaries")
		cnn        = fs.String("cnn", "testdata/teacher/regnety_fmnist.onnx", "the CNN teacher")
		cnn1       = fs.String("cnn1", "testdata/teacher/regnety_fmnist_1ep.onnx", "the CNN teacher of about the transformer's accuracy")
		vit        = fs.String("vit", "testdata/teacher/vit_fmnist.onnx", "the transformer teacher")
		limit      = fs.Int("limit", 0, "training images (0: the scale's, 20000 or 2000 with --quick)")
		epochs     = fs.Int("epochs", 0, "student epochs (0: the scale's, 3 or 2 with --quick)")
		seeds      = fs.String("seeds", "", "student seeds, comma-separated (default 0,1)")
		views      = fs.String("views", "", "stored views per image of the consistent-teaching stores, comma-separated (default 8,32)")
		jobs       = fs.Int("jobs", 0, "student runs side by side (0: the cores, at most 2)")
		reportOnly = fs.Bool("report-only", false, "run nothing: write the report from the jobs finished so far")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "reproduce: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	s := reproduce.Full()
	if *quick {
		s = reproduce.Quick()
	}
	s.Data, s.Bin, s.CNN, s.CNN1, s.ViT = *data, *bin, *cnn, *cnn1, *vit
	s.Out = *out
	if s.Out == "" {
		s.Out = map[bool]string{false: "out/reproduce", true: "out/reproduce-quick"}[*quick]
	}
	if *report == "" {
		*report = map[bool]string{false: "docs/results.md", true: filepath.Join(s.Out, "results.md")}[*quick]
	}
	if *plots == "" {
		*plots = strings.TrimSuffix(*report, ".md")
	}
	if *limit > 0 {
		s.Limit = *limit
	}
	if *epochs > 0 {
		s.Epochs = *epochs
	}
	var err error
	if *seeds != "" {
		if s.Seeds, err = parseInts(*seeds); err != nil {
			fmt.Fprintf(stderr, "reproduce: --seeds %q: %v\n", *seeds, err)
			return 2
		}
	}
	if *views != "" {
		if s.Views, err = parseInts(*views); err != nil {
			fmt.Fprintf(stderr, "reproduce: --views %q: %v\n", *views, err)
			return 2
		}
	}
	s.Jobs = *jobs
	if s.Jobs <= 0 {
		s.Jobs = min(runtime.NumCPU(), 2)
	}
	plan, err := reproduce.NewPlan(s)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	status := 0
	if !*reportOnly {
		for _, f := range []string{filepath.Join(s.Bin, "precompute"), filepath.Join(s.Bin, "train"), s.CNN, s.CNN1, s.ViT} {
			if _, err := os.Stat(f); err != nil {
				fmt.Fprintf(stderr, "reproduce: %v (build the binaries with go build -o %s/ ./cmd/...)\n", err, s.Bin)
				return 1
			}
		}
		if err := plan.Run(ctx, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
		}
	}
	// The report names the command that runs its jobs: --report-only rewrites the same report.
	var shown []string
	for _, a := range args {
		if a != "--report-only" && a != "-report-only" {
			shown = append(shown, a)
		}
	}
	if err := writeReport(context.WithoutCancel(ctx), plan, *report, *plots, filepath.Join(*bin, "reproduce")+" "+strings.Join(shown, " ")); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "reproduce: wrote %s and %s/*.png\n", *report, *plots)
	return status
}

func writeReport(ctx context.Context, plan *reproduce.Plan, report, plots, command string) error {
	res, err := plan.Collect(ctx)
	if err != nil {
		return err
	}
	var wall float64
	for _, j := range plan.Jobs() {
		if rec := reproduce.ReadRecord(plan.Settings, j.ID, plan.CommandLine(j)); rec != nil {
			wall += rec.WallS
		}
	}
	if err := plan.Plots(plots, res); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(report), plots)
	if err != nil {
		rel = plots
	}
	h := reproduce.Header{Command: strings.TrimSpace(command), Machine: machine(), Date: time.Now(), WallS: wall, Plots: rel}
	if err := os.MkdirAll(filepath.Dir(report), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(report, func(w io.Writer) error {
		plan.Report(w, res, h)
		return nil
	})
}

// machine names the CPU and its core count.
func machine() string {
	name := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				name = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores", name, runtime.NumCPU())
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
