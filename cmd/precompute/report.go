package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/deitkd/deitkd/precompute"
	"github.com/schollz/progressbar/v3"
)

// progressPrinter returns a Progress callback that shows a run on w: a progress bar (images,
// img/s, ETA) when w is a terminal, otherwise a plain line every interval. progressbar never
// checks for a terminal itself, so the caller says whether w is one.
func progressPrinter(w io.Writer, terminal bool, interval time.Duration) func(precompute.Progress) {
	if terminal {
		var bar *progressbar.ProgressBar
		return func(p precompute.Progress) {
			if p.Total == 0 {
				return // nothing to do: the summary says so
			}
			if bar == nil {
				bar = progressbar.NewOptions64(p.Total,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription("labelling"),
					progressbar.OptionShowCount(),
					progressbar.OptionShowIts(),
					progressbar.OptionSetItsString("img"),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(200*time.Millisecond),
					progressbar.OptionFullWidth(),
				)
			}
			_ = bar.Set64(p.Done + p.Failed)
			if p.Final {
				_ = bar.Exit()
				fmt.Fprintln(w)
			}
		}
	}
	var last time.Duration
	started := false
	return func(p precompute.Progress) {
		if p.Final {
			return // the summary follows
		}
		if !started { // at once: the run has begun, how much it will do
			started = true
			last = p.Elapsed
			fmt.Fprintf(w, "precompute: labelling %d images\n", p.Total)
			return
		}
		if p.Elapsed-last < interval {
			return
		}
		last = p.Elapsed
		n := p.Done + p.Failed
		rate := float64(n) / p.Elapsed.Seconds()
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(p.Total-n)/rate) * time.Second).Round(time.Second).String()
		}
		ahead := ""
		if p.Decoded > n {
			ahead = fmt.Sprintf(" (%d decoded)", p.Decoded)
		}
		fmt.Fprintf(w, "precompute: %d/%d images (%.1f%%)%s, %d failed, %.1f img/s, ETA %s\n",
			n, p.Total, 100*float64(n)/float64(max(p.Total, 1)), ahead, p.Failed, rate, eta)
	}
}

// writeSummary prints the closing summary: what was done, skipped, failed and already present, the
// speed, the teacher's top-1 against ground truth where labels exist, a line for each kind of
// image PIL's conversion renders unlike its picture, and where the files are.
func writeSummary(w io.Writer, s precompute.Summary) {
	fmt.Fprintf(w, "precompute: %d images labelled (%d rows) in %s, %.1f img/s\n",
		s.Done, s.Rows, s.Elapsed.Round(time.Millisecond), s.ImagesPerSecond())
	fmt.Fprintf(w, "  failed (logged, skipped): %d   already present: %d", s.Failed, s.Present)
	if s.OtherShards > 0 {
		fmt.Fprintf(w, "   other shards': %d", s.OtherShards)
	}
	if s.BeyondLimit > 0 {
		fmt.Fprintf(w, "   beyond --limit: %d", s.BeyondLimit)
	}
	if s.NotInSource > 0 {
		fmt.Fprintf(w, "   not in the --views-from store: %d", s.NotInSource)
	}
	fmt.Fprintf(w, "   dataset: %d\n", s.Images)
	if s.Labelled > 0 {
		fmt.Fprintf(w, "  teacher top-1 against the dataset's labels (view 0): %.2f%% of %d images\n",
			100*float64(s.Correct)/float64(s.Labelled), s.Labelled)
	}
	if s.Done > 0 {
		fmt.Fprintf(w, "  busy time: decode %s (%.0f%%, %d workers), teacher %s (%d threads), store %s\n",
			s.DecodeTime.Round(time.Millisecond), 100*s.DecodeShare(), s.Workers, s.TeacherTime.Round(time.Millisecond), s.Threads, s.WriteTime.Round(time.Millisecond))
	}
	exif := "with an EXIF orientation, not applied (as torchvision; --exif-transpose applies it)"
	if s.EXIFTransposed {
		exif = "with an EXIF orientation, applied (--exif-transpose)"
	}
	for _, n := range []struct {
		c    precompute.NoteCount
		what string
	}{
		{s.Clipped16, "16-bit, reduced to 8 bits as PIL does (values above 255 clip: they may look white)"},
		{s.AlphaOnly, "with the picture only in alpha: blank after convert(\"RGB\"), as in torchvision"},
		{s.EXIFRotated, exif},
	} {
		if n.c.Images > 0 {
			fmt.Fprintf(w, "  %d images %s, e.g. %s\n", n.c.Images, n.what, n.c.First)
		}
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  failed: %s\n", f.Err)
	}
	if n := s.Failed - int64(len(s.Failures)); n > 0 {
		fmt.Fprintf(w, "  ... and %d more failures\n", n)
	}
	m := s.Manifest
	fmt.Fprintf(w, "  labels: %s (%d shards, %d rows of %d images in all)\n", s.Out, len(m.Shards), m.Rows, m.Images)
	for _, f := range m.Failures {
		fmt.Fprintf(w, "  failure log: %s (%d images)\n", filepath.Join(s.Out, filepath.FromSlash(f.File)), f.Rows)
	}
}
