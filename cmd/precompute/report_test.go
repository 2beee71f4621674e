package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/store"
)

func TestProgressPrinter(t *testing.T) {
	t.Run("plain lines, throttled", func(t *testing.T) {
		var buf bytes.Buffer
		p := progressPrinter(&buf, false, time.Second)
		p(precompute.Progress{Total: 100, Elapsed: time.Millisecond})                               // the start: at once
		p(precompute.Progress{Total: 100, Done: 10, Elapsed: 500 * time.Millisecond})               // too soon
		p(precompute.Progress{Total: 100, Done: 10, Decoded: 30, Elapsed: 1200 * time.Millisecond}) // a slow batch: still a line
		p(precompute.Progress{Total: 100, Done: 38, Failed: 2, Elapsed: 2 * time.Second})           // too soon after
		p(precompute.Progress{Total: 100, Done: 40, Failed: 2, Elapsed: 2500 * time.Millisecond})
		p(precompute.Progress{Total: 100, Done: 100, Elapsed: 5 * time.Second, Final: true})
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		want := []string{"precompute: labelling 100 images",
			"10/100 images (10.0%) (30 decoded), 0 failed, 8.3 img/s, ETA 10s",
			"42/100 images (42.0%), 2 failed, 16.8 img/s, ETA 3s"}
		if len(lines) != len(want) {
			t.Fatalf("progress lines %q, want %q", lines, want)
		}
		for i, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Fatalf("line %d %q, want %q", i, lines[i], w)
			}
		}
	})
	t.Run("bar on a terminal", func(t *testing.T) {
		var buf bytes.Buffer
		p := progressPrinter(&buf, true, time.Second)
		p(precompute.Progress{Total: 100, Done: 50, Elapsed: time.Second})
		p(precompute.Progress{Total: 100, Done: 100, Elapsed: 2 * time.Second, Final: true})
		if out := buf.String(); !strings.Contains(out, "100/100") || !strings.Contains(out, "img/s") {
			t.Fatalf("bar output %q", out)
		}
	})
}

func TestSummaryWrite(t *testing.T) {
	s := precompute.Summary{Out: "labels", Images: 12, Total: 10, Done: 8, Failed: 2, Present: 2, Rows: 8,
		Elapsed: 2 * time.Second, Labelled: 8, Correct: 6,
		DecodeTime: time.Second, TeacherTime: 3 * time.Second, Workers: 2, Threads: 1,
		Clipped16: precompute.NoteCount{Images: 12, First: "a/g.png"}, EXIFRotated: precompute.NoteCount{Images: 5, First: "a/r.jpg"},
		Failures: []store.Failure{{ImageID: "a/b.jpg", Err: "decode a/b.jpg: dataset: empty file"}}}
	var buf bytes.Buffer
	writeSummary(&buf, s)
	for _, want := range []string{"8 images labelled (8 rows)", "4.0 img/s", "failed (logged, skipped): 2", "already present: 2",
		"top-1 against the dataset's labels (view 0): 75.00% of 8 images", "decode 1s (25%, 2 workers), teacher 3s (1 threads)", "failed: decode a/b.jpg: dataset: empty file",
		"... and 1 more failures", "labels: labels",
		"  12 images 16-bit, reduced to 8 bits as PIL does (values above 255 clip: they may look white), e.g. a/g.png\n",
		"  5 images with an EXIF orientation, not applied (as torchvision; --exif-transpose applies it), e.g. a/r.jpg\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "alpha") {
		t.Errorf("summary has a line for no image in alpha alone:\n%s", buf.String())
	}
	s.EXIFTransposed = true
	buf.Reset()
	writeSummary(&buf, s)
	if want := "  5 images with an EXIF orientation, applied (--exif-transpose), e.g. a/r.jpg\n"; !strings.Contains(buf.String(), want) {
		t.Errorf("--exif-transpose summary lacks %q:\n%s", want, buf.String())
	}
}
