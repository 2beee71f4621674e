package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
)

// nanTeacher writes a real ONNX teacher (a tiny exported student) that returns non-finite
// logits for some inputs: one patch-projection weight is 1e38, so a bright pixel at (7,7) of
// a 14-pixel patch overflows the embedding to +Inf (x = v/255/0.25 up to 4), which LayerNorm
// turns into NaN; where that pixel is 0 the weight contributes nothing.
func nanTeacher(t *testing.T) string {
	t.Helper()
	m, err := student.New(student.Config{ImageSize: 28, Channels: 1, Patch: 14, Dim: 8, Depth: 1, Heads: 2, Classes: 10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Params() {
		if w.Name == "patch_embed.proj.weight" { // (D, C, P, P)
			w.Data[7*14+7] = 1e38
		}
	}
	p := filepath.Join(t.TempDir(), "nan.onnx")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := export.ONNX(f, m, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeIDXBright writes n 28×28 images; image i has 255 at pixel (7,7) of each 14-pixel patch
// when bright(i), 0 there otherwise, and small values elsewhere.
func writeIDXBright(t *testing.T, n int, bright func(int) bool) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "bright")
	img := binary.BigEndian.AppendUint32(nil, 0x0803)
	for _, d := range []uint32{uint32(n), 28, 28} {
		img = binary.BigEndian.AppendUint32(img, d)
	}
	lab := binary.BigEndian.AppendUint32(nil, 0x0801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(n))
	for i := range n {
		for y := range 28 {
			for x := range 28 {
				v := byte((x*7 + y*3 + i) % 90)
				if y%14 == 7 && x%14 == 7 {
					v = 0
					if bright(i) {
						v = 255
					}
				}
				img = append(img, v)
			}
		}
		lab = append(lab, byte(i%10))
	}
	if err := os.WriteFile(prefix+"-images-idx3-ubyte", img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefix+"-labels-idx1-ubyte", lab, 0o644); err != nil {
		t.Fatal(err)
	}
	return "idx:" + prefix
}

// TestTeacherNaN: an image the teacher returns NaN for is that image's failure: with
// --on-error skip it is logged (stage teacher, the value named) and the run goes on, exit 3,
// and a rerun resumes past it; with --on-error fail the run stops naming it, exit 1.
func TestTeacherNaN(t *testing.T) {
	model := nanTeacher(t)
	bright := func(i int) bool { return i%5 == 2 }
	data := writeIDXBright(t, 40, bright)
	out := filepath.Join(t.TempDir(), "labels")
	args := []string{"--model", model, "--output", "cls_logits", "--data", data, "--out", out,
		"--mean", "0", "--std", "0.25", "--batch", "8", "--workers", "1", "--threads", "1", "--shard-rows", "10"}
	for run := range 2 { // the rerun resumes: the failed images stay failed, nothing stops
		code, stdout, stderr := runInProcess(t, args...)
		if code != exitSkipped {
			t.Fatalf("run %d: exit %d, want %d\n%s%s", run, code, exitSkipped, stdout, stderr)
		}
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := r.Failures()
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range fs {
		if f.Stage != "teacher" || !strings.Contains(f.Err, "NaN") && !strings.Contains(f.Err, "Inf") {
			t.Errorf("failure %+v: want stage teacher naming the value", f)
		}
		failed = append(failed, fmt.Sprint(f.ImageIndex))
	}
	var want []string
	for i := range 40 {
		if bright(i) {
			want = append(want, fmt.Sprint(i))
		}
	}
	if strings.Join(failed, ",") != strings.Join(want, ",") {
		t.Fatalf("failed images %v, want %v", failed, want)
	}
	if r.Manifest.Images != 40-int64(len(want)) {
		t.Fatalf("%d images stored, want %d", r.Manifest.Images, 40-len(want))
	}
	verify(t, out)

	code, _, stderr := runInProcess(t, append(args[:len(args):len(args)], "--on-error", "fail", "--out", filepath.Join(t.TempDir(), "fail"))...)
	if code != exitFatal || !strings.Contains(stderr, "image 2") || !strings.Contains(stderr, "--on-error fail") {
		t.Fatalf("--on-error fail: exit %d, %q: want 1 naming image 2", code, stderr)
	}
}
