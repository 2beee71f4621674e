// Command train trains a DeiT student from a label store (stage two of deitkd).
//
//	train --labels labels/ --data idx:fashion-mnist/train --eval-data idx:fashion-mnist/t10k --out run/
//	train --analyze run/checkpoint.ckpt --labels labels/ --eval-data idx:fashion-mnist/t10k
//
// Exit status: 0 done, 1 a fatal error (a label store that does not fit, a non-finite loss,
// an interruption: rerun with --resume to continue), 2 a usage error. Flags and wiring only:
// the run is package train's (flags.go turns the flags into train.Options).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/deitkd/deitkd/train"
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

// run parses args, trains (or analyses) and returns the exit code. tty says whether stderr is
// a terminal (progress bars) or not (a plain line every few seconds).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	f := newFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if f.fs.NArg() > 0 {
		return usage(stderr, fmt.Errorf("unexpected argument %q", f.fs.Arg(0)))
	}
	o, err := f.options()
	if err != nil {
		return usage(stderr, err)
	}
	if *f.analyze != "" {
		cos, err := train.Analyze(ctx, train.AnalyzeOptions{Checkpoint: *f.analyze, EvalData: o.EvalData, EvalLabels: o.EvalLabels,
			Labels: o.Labels, EvalLimit: o.EvalLimit, Batch: o.Batch, Workers: o.Workers, Mean: o.Mean, Std: o.Std})
		if err != nil {
			return failed(stderr, err)
		}
		train.WriteAnalysis(stdout, cos)
		return exitOK
	}
	if o.Labels == "" || o.Data == "" || o.Out == "" {
		return usage(stderr, errors.New("--labels, --data and --out are required"))
	}
	if o.EvalLabels != "" && o.EvalData == "" {
		return usage(stderr, errors.New("--eval-labels needs --eval-data"))
	}
	o.Log = func(s string) { fmt.Fprintln(stderr, "train:", s) }
	o.Progress = train.ProgressPrinter(stderr, tty, 5*time.Second)
	job, err := train.New(ctx, o)
	if err != nil {
		return failed(stderr, err)
	}
	sum, err := job.Run(ctx)
	if sum != nil && len(sum.Epochs) > 0 {
		sum.WriteTable(stdout)
	}
	if err != nil {
		return failed(stderr, err)
	}
	return exitOK
}

// failed reports err with the exit code of its kind: a usage error for options no run can
// use, the hint to resume for an interruption, fatal otherwise.
func failed(stderr io.Writer, err error) int {
	var fe *train.FolderError
	switch {
	case errors.As(err, &fe) && fe.Resumable:
		err = fmt.Errorf("%w: give --resume to continue it, or another --out (or delete the folder) to start over", err)
	case errors.As(err, &fe):
		err = fmt.Errorf("%w; to start over, give another --out or delete the folder", err)
	}
	switch {
	case errors.Is(err, train.ErrOptions):
		return usage(stderr, err)
	case errors.Is(err, context.Canceled):
		err = errors.New("interrupted; rerun the same command with --resume to continue from the last finished epoch")
	}
	fmt.Fprintln(stderr, "train:", err)
	return exitFatal
}

func usage(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "train:", err)
	return exitUsage
}
