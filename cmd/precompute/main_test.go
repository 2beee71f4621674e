package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

const testdata = "../../testdata"

// helperEnv makes the test binary act as the precompute command (see TestMain), so the kill
// test runs a real precompute process without building one.
const helperEnv = "DEITKD_PRECOMPUTE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// command returns a precompute process running args.
func command(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), helperEnv+"=1")
	return c
}

// runInProcess runs the command's run function and returns its exit code and output.
func runInProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, false)
	return code, stdout.String(), stderr.String()
}

// storeRow is the part of a row the comparisons need.
type storeRow struct {
	id     string
	index  int64
	view   int32
	crop   [4]float32
	flip   bool
	logits []float32
}

func readRows(t *testing.T, dir string) []storeRow {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	var rows []storeRow
	err = r.Scan(context.Background(), []string{schema.ColImageID, schema.ColImageIndex, schema.ColView, schema.ColCrop, schema.ColFlip, schema.ColTeacherLogits},
		func(rec arrow.RecordBatch) error {
			ids := rec.Column(0).(*array.String)
			idx := rec.Column(1).(*array.Int64)
			views := rec.Column(2).(*array.Int32)
			crops := rec.Column(3).(*array.FixedSizeList)
			flips := rec.Column(4).(*array.Boolean)
			logits := rec.Column(5).(*array.FixedSizeList)
			for i := range int(rec.NumRows()) {
				r := storeRow{id: ids.Value(i), index: idx.Value(i), view: views.Value(i), flip: flips.Value(i)}
				s, _ := crops.ValueOffsets(i)
				copy(r.crop[:], crops.ListValues().(*array.Float32).Float32Values()[s:s+4])
				s, e := logits.ValueOffsets(i)
				r.logits = slices.Clone(logits.ListValues().(*array.Float32).Float32Values()[s:e])
				rows = append(rows, r)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// verify runs the store's own full check: checksums, schema, order, views 0..V-1 of each
// image, nothing twice, and every image of the dataset stored or in the failure log.
func verify(t *testing.T, dir string) {
	t.Helper()
	rep, err := store.Verify(context.Background(), dir)
	if err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify %s: %s", dir, p)
	}
}

// TestBadImages mixes every kind of bad file into a class-folder tree: they are skipped and
// logged naming the file (exit 3), and --on-error fail stops at the first (exit 1).
func TestBadImages(t *testing.T) {
	data := t.TempDir()
	copyDir := func(from, class string) []string {
		ents, err := os.ReadDir(from)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(data, class), 0o755)
		var names []string
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(from, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(data, class, e.Name()), b, 0o644)
			names = append(names, class+"/"+e.Name())
		}
		return names
	}
	bad := copyDir(filepath.Join(testdata, "bad"), "bad")
	good := copyDir(filepath.Join(testdata, "images", "jpeg"), "good")
	if len(bad) < 5 {
		t.Fatalf("testdata/bad has %d files", len(bad))
	}
	args := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", data,
		"--mean", "0.5", "--std", "0.5", "--workers", "2", "--threads", "1"}

	out := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr := runInProcess(t, append(args, "--out", out)...)
	if code != exitSkipped {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitSkipped, stdout, stderr)
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	fails, err := r.Failures()
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range fails {
		failed = append(failed, f.ImageID)
		if !strings.Contains(f.Err, f.ImageID) || !strings.Contains(stdout, f.Err) {
			t.Errorf("failure of %s: %q does not name the file, or is not in the summary", f.ImageID, f.Err)
		}
	}
	if !slices.Equal(failed, bad) {
		t.Errorf("failure log lists %v, want %v", failed, bad)
	}
	wantErr := map[string]string{
		"bad/zero_bytes.jpg": "empty", "bad/text.jpg": "not an image", "bad/truncated.jpg": "truncated",
		"bad/truncated.png": "truncated", "bad/huge_dimensions.png": "too large",
	}
	for _, f := range fails {
		if w, ok := wantErr[f.ImageID]; ok && !strings.Contains(f.Err, w) {
			t.Errorf("%s failed with %q, want it to say %q", f.ImageID, f.Err, w)
		}
	}
	rows := readRows(t, out)
	if len(rows) != len(good) {
		t.Errorf("%d rows, want the %d good images", len(rows), len(good))
	}
	for _, row := range rows {
		if !strings.HasPrefix(row.id, "good/") {
			t.Errorf("row for %s", row.id)
		}
	}
	verify(t, out)
	t.Logf("summary:\n%s", stdout)

	out2 := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr = runInProcess(t, append(args, "--out", out2, "--on-error", "fail")...)
	if code != exitFatal || !strings.Contains(stderr, bad[0]) || !strings.Contains(stderr, "--on-error fail") {
		t.Fatalf("--on-error fail: exit %d, stderr %q; want exit %d naming %s", code, stderr, exitFatal, bad[0])
	}
	t.Logf("--on-error fail: %s", stderr)
}

// TestRefusedBeforeReading: a wrong model is refused with exit 1, naming its inputs and
// outputs, before the store folder is made; usage errors exit 2.
func TestRefusedBeforeReading(t *testing.T) {
	out := filepath.Join(t.TempDir(), "labels")
	for _, m := range []string{"wrong_int64_input.onnx", "wrong_3d_input.onnx"} {
		code, _, stderr := runInProcess(t, "--model", filepath.Join(testdata, "models", m), "--data", filepath.Join(testdata, "bad"), "--out", out)
		if code != exitFatal || !strings.Contains(stderr, "inputs:") || !strings.Contains(stderr, "outputs:") {
			t.Errorf("%s: exit %d, stderr %q", m, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the store folder was made", m)
		}
	}
	for _, args := range [][]string{
		{"--data", "x", "--out", out},
		{"--model", "m", "--data", "x", "--out", out, "--shard", "2/2"},
		{"--model", "m", "--data", "x", "--out", out, "--mean", "0.5,a"},
		{"--model", "m", "--data", "x", "--out", out, "--scale", "0.5"},
		{"--model", "m", "--data", "x", "--out", out, "--store", "some"},
	} {
		if code, _, stderr := runInProcess(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

// TestBadOptionValues: every flag value that cannot make a run is a usage error (exit 2) that
// names the flag's value, found before the model is opened or the store folder made.
func TestBadOptionValues(t *testing.T) {
	base := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"),
		"--data", "idx:" + filepath.Join(testdata, "idx", "t10k"), "--mean", "0.5", "--std", "0.5"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"ratio reversed", []string{"--views", "2", "--ratio", "2,1"}, "ratio"},
		{"ratio zero", []string{"--views", "2", "--ratio", "0,1"}, "ratio"},
		{"scale above 1", []string{"--views", "4", "--scale", "2,3"}, "scale"},
		{"scale reversed", []string{"--views", "2", "--scale", "0.9,0.5"}, "scale"},
		{"flip-p above 1", []string{"--views", "2", "--flip-p", "2"}, "flip"},
		{"flip-p negative", []string{"--views", "2", "--flip-p", "-0.5"}, "flip"},
		{"interp", []string{"--interp", "nearest"}, "nearest"},
		{"std zero", []string{"--std", "0"}, "std"},
		{"std negative", []string{"--std", "-1"}, "std"},
		{"std NaN", []string{"--std", "NaN"}, "std"},
		{"mean Inf", []string{"--mean", "Inf"}, "mean"},
		{"provider", []string{"--provider", "tpu"}, "tpu"},
		{"topk without store topk", []string{"--topk", "3"}, "topk"},
		{"topk negative", []string{"--store", "topk", "--topk", "-1"}, "topk"},
		{"topk above K", []string{"--store", "topk", "--topk", "11"}, "topk 11"},
		{"randaugment spec", []string{"--views", "2", "--randaugment", "rand-x9"}, "--randaugment"},
		{"erase above 1", []string{"--views", "2", "--erase", "1.5"}, "erase probability 1.5"},
		{"mixup negative", []string{"--views", "2", "--mixup", "-1"}, "mixup alpha"},
		{"augment one view", []string{"--erase", "0.25"}, "--randaugment, --erase, --mixup, --cutmix, --mix-p, --mix-switch, --views"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "labels")
			args := append(append(slices.Clone(base), "--out", out), tt.args...)
			code, _, stderr := runInProcess(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", tt.args, code, stderr, exitUsage, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("the store folder was made")
			}
		})
	}
}

// TestClassFilesRefused: a --class-names file with a name twice is refused naming the name and
// both lines, and a missing --class-names or --class-map file is reported as the missing file,
// not as classes that disagree (exit 1 each, before the store folder is made).
func TestClassFilesRefused(t *testing.T) {
	dir := t.TempDir()
	dup := filepath.Join(dir, "dup.txt")
	if err := os.WriteFile(dup, []byte("a\nb\nc\nd\ne\nf\ng\nc\ni\nj\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	classDir := filepath.Join(dir, "tree")
	for _, c := range []string{"x", "y"} {
		os.MkdirAll(filepath.Join(classDir, c), 0o755)
		b, err := os.ReadFile(filepath.Join(testdata, "images", "jpeg", "gray_37x21.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(classDir, c, "1.jpg"), b, 0o644)
	}
	missing := filepath.Join(dir, "no-such-file.txt")
	idx := "idx:" + filepath.Join(testdata, "idx", "t10k")
	for _, tt := range []struct {
		name string
		args []string
		want []string
		not  string
	}{
		{"duplicate class name", []string{"--data", idx, "--class-names", dup}, []string{dup, `"c"`, "lines 3 and 8"}, ""},
		{"missing class names", []string{"--data", idx, "--class-names", missing}, []string{missing, "no such file"}, "disagree"},
		{"missing class map", []string{"--data", classDir, "--class-map", missing}, []string{missing, "no such file"}, "disagree"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "labels")
			args := append([]string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--mean", "0.5", "--std", "0.5", "--out", out}, tt.args...)
			code, _, stderr := runInProcess(t, args...)
			if code != exitFatal {
				t.Errorf("exit %d, want %d (%s)", code, exitFatal, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
			if tt.not != "" && strings.Contains(stderr, tt.not) {
				t.Errorf("stderr %q says %q", stderr, tt.not)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("the store folder was made")
			}
		})
	}
}

// TestSecondWriter: a precompute on an --out that another writer holds is refused at once with
// exit 1, naming the holder's pid; once the holder is done the same command runs.
func TestSecondWriter(t *testing.T) {
	out := filepath.Join(t.TempDir(), "labels")
	args := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", "idx:" + filepath.Join(testdata, "idx", "t10k"),
		"--out", out, "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1"}
	if code, _, stderr := runInProcess(t, args...); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	m, err := store.ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.OpenWriter(out, m.Meta(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runInProcess(t, args...)
	want := fmt.Sprintf("store %s is being written by process %d (lock %s)", out, os.Getpid(), filepath.Join(out, ".lock"))
	if code != exitFatal || !strings.Contains(stderr, want) {
		t.Fatalf("run beside a writer: exit %d, stderr %q; want exit %d saying %q", code, stderr, exitFatal, want)
	}
	t.Log(strings.TrimSpace(stderr))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runInProcess(t, args...); code != exitOK {
		t.Fatalf("run after the writer closed: exit %d\n%s", code, stderr)
	}
}

// writeIDX writes n random 28×28 images and labels as MNIST-format files PREFIX-images-idx3-ubyte
// and PREFIX-labels-idx1-ubyte and returns the source spec.
func writeIDX(t *testing.T, n int) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "synth")
	rng := rand.New(rand.NewPCG(5, 6))
	img := binary.BigEndian.AppendUint32(nil, 0x0803)
	for _, d := range []uint32{uint32(n), 28, 28} {
		img = binary.BigEndian.AppendUint32(img, d)
	}
	lab := binary.BigEndian.AppendUint32(nil, 0x0801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(n))
	for range n {
		for range 28 * 28 {
			img = append(img, byte(rng.IntN(256)))
		}
		lab = append(lab, byte(rng.IntN(10)))
	}
	if err := os.WriteFile(prefix+"-images-idx3-ubyte", img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefix+"-labels-idx1-ubyte", lab, 0o644); err != nil {
		t.Fatal(err)
	}
	return "idx:" + prefix
}

// shardsListed is the number of shards the store's manifest lists now (0 if unreadable).
func shardsListed(dir string) int {
	m, err := store.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return 0
	}
	return len(m.Shards)
}

// signalWhen starts precompute with args, sends sig once the manifest lists at least shards
// shards, and returns the exit error and stderr. It fails the test if the run ends first.
func signalWhen(t *testing.T, out string, shards int, sig syscall.Signal, args []string) (error, string) {
	t.Helper()
	c := command(args...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			t.Fatalf("precompute finished (%v) before %d shards were listed; make the run longer\n%s", err, shards, stderr.String())
		case <-tick.C:
		}
		if shardsListed(out) >= shards {
			break
		}
	}
	if err := c.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return <-done, stderr.String()
}

// TestKillResume kills a real precompute process with SIGKILL mid-run, interrupts the rerun
// with SIGINT, reruns the same command to the end, and compares the store row for row with an
// uninterrupted run's, checking that no image is stored twice.
func TestKillResume(t *testing.T) {
	spec := writeIDX(t, 2400)
	args := func(out string) []string {
		return []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", spec, "--out", out,
			"--views", "2", "--seed", "11", "--scale", "0.35,1", "--batch", "8", "--workers", "1", "--threads", "1",
			"--shard-rows", "40", "--mean", "0.5", "--std", "0.5"}
	}
	whole := filepath.Join(t.TempDir(), "whole")
	if code, _, stderr := runInProcess(t, args(whole)...); code != exitOK {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	want := readRows(t, whole)

	out := filepath.Join(t.TempDir(), "killed")
	err, _ := signalWhen(t, out, 3, syscall.SIGKILL, args(out))
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("killed run ended with %v", err)
	}
	afterKill := readRows(t, out)
	if len(afterKill) == 0 || len(afterKill) >= len(want) {
		t.Fatalf("after the kill the store holds %d of %d rows; the kill did not land mid-run", len(afterKill), len(want))
	}
	shardsAfterKill := shardsListed(out)

	err, stderr := signalWhen(t, out, shardsAfterKill+3, syscall.SIGINT, args(out))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFatal || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("interrupted rerun: %v, stderr %q; want exit %d saying interrupted", err, stderr, exitFatal)
	}
	afterInt := readRows(t, out)
	if len(afterInt) <= len(afterKill) || len(afterInt) >= len(want) {
		t.Fatalf("after SIGINT the store holds %d rows (after the kill %d, in all %d)", len(afterInt), len(afterKill), len(want))
	}

	c := command(args(out)...)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("final rerun: %v\n%s", err, b)
	} else if !strings.Contains(string(b), fmt.Sprintf("already present: %d", len(afterInt)/2)) {
		t.Errorf("final rerun did not report %d images already present:\n%s", len(afterInt)/2, b)
	}
	verify(t, out)
	got := readRows(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d rows after resuming, want %d", len(got), len(want))
	}
	seen := map[[2]int64]bool{}
	bitEqual := 0
	for i := range want {
		g, w := got[i], want[i]
		key := [2]int64{g.index, int64(g.view)}
		if seen[key] {
			t.Fatalf("image %d view %d stored twice", g.index, g.view)
		}
		seen[key] = true
		if g.id != w.id || g.index != w.index || g.view != w.view || g.crop != w.crop || g.flip != w.flip {
			t.Fatalf("row %d: %+v, want %+v", i, g, w)
		}
		for c := range w.logits {
			if d := g.logits[c] - w.logits[c]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("row %d (%s view %d): logit %d is %v, want %v", i, g.id, g.view, c, g.logits[c], w.logits[c])
			}
		}
		if slices.Equal(g.logits, w.logits) {
			bitEqual++
		}
	}
	t.Logf("killed after %d rows, interrupted after %d, resumed to %d rows; %d bit-equal to the uninterrupted run",
		len(afterKill), len(afterInt), len(got), bitEqual)
}

// TestCUDAFlags checks that the CUDA flags reach the teacher: this machine's ONNX Runtime has no
// CUDA provider, so a CUDA run falls back to CPU with one warning, --no-fallback makes it an
// error, and a bad --cudnn-search is refused as a usage error (exit 2, never a fallback).
func TestCUDAFlags(t *testing.T) {
	model := filepath.Join(testdata, "models", "tiny_gray.onnx")
	data := "idx:" + filepath.Join(testdata, "idx", "t10k")
	base := []string{"--model", model, "--data", data, "--mean", "0.5", "--std", "0.5", "--provider", "cuda"}
	t.Run("fallback", func(t *testing.T) {
		args := append(base, "--out", filepath.Join(t.TempDir(), "l"), "--cudnn-search", "HEURISTIC", "--gpu-mem-limit", "1000000")
		code, _, stderr := runInProcess(t, args...)
		if code != exitOK || strings.Count(stderr, "running on CPU") != 1 {
			t.Errorf("exit %d, want %d with one CPU-fallback warning; stderr:\n%s", code, exitOK, stderr)
		}
	})
	t.Run("no-fallback", func(t *testing.T) {
		args := append(base, "--out", filepath.Join(t.TempDir(), "l"), "--no-fallback")
		if code, _, stderr := runInProcess(t, args...); code != exitFatal || !strings.Contains(stderr, "CUDA") {
			t.Errorf("exit %d, want %d naming CUDA; stderr:\n%s", code, exitFatal, stderr)
		}
	})
	t.Run("bad-search", func(t *testing.T) {
		args := append(base, "--out", filepath.Join(t.TempDir(), "l"), "--cudnn-search", "FASTEST")
		if code, _, stderr := runInProcess(t, args...); code != exitUsage || !strings.Contains(stderr, "FASTEST") {
			t.Errorf("exit %d, want %d naming the bad value; stderr:\n%s", code, exitUsage, stderr)
		}
	})
}
