package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/store"
)

// TestTeacherOff: --teacher-off feeds the images without a model or a store and prints the
// img/s line, listing the folder with --extensions; --teacher-off without --crop is a usage error.
func TestTeacherOff(t *testing.T) {
	data := filepath.Join(testdata, "images")
	code, stdout, stderr := runInProcess(t, "--teacher-off", "--data", data, "--resize", "40", "--crop", "32",
		"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--batch", "4", "--jpeg-draft")
	if code != exitOK || !strings.Contains(stdout, "feed_img_per_s ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// --extensions lists the folder as a labelling run would: the two GIFs alone here.
	code, stdout, stderr = runInProcess(t, "--teacher-off", "--data", data, "--crop", "32", "--extensions", "gif")
	if code != exitOK || !strings.Contains(stdout, "fed 2 images (0 failed)") {
		t.Fatalf("--extensions gif: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runInProcess(t, "--teacher-off", "--data", data); code != exitUsage || !strings.Contains(stderr, "--crop") {
		t.Fatalf("no crop: exit %d, stderr %q", code, stderr)
	}
}

// TestJPEGDraftLabelling: --jpeg-draft labels with drafted JPEGs (a 520×390 photo for resize 32
// is decoded at 1/8), records it in the store's preprocessing, so a rerun without it is refused
// as another configuration, and is refused with random views.
func TestJPEGDraftLabelling(t *testing.T) {
	data := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(filepath.Join(data, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "dataset", "testdata", "draft", "photo_520x390.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a", "photo.jpg"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(testdata, "models", "tiny_regnet.onnx")
	label := func(out string, extra ...string) (int, string) {
		args := append([]string{"--model", model, "--data", data, "--out", out, "--resize", "32",
			"--class-names", writeNames(t, 5), "--class-map", writeClassMap(t, "a\t0\n")}, extra...)
		code, _, stderr := runInProcess(t, args...)
		return code, stderr
	}
	exact, drafted := filepath.Join(t.TempDir(), "exact"), filepath.Join(t.TempDir(), "drafted")
	if code, stderr := label(exact); code != exitOK {
		t.Fatalf("exact: exit %d\n%s", code, stderr)
	}
	if code, stderr := label(drafted, "--jpeg-draft"); code != exitOK {
		t.Fatalf("drafted: exit %d\n%s", code, stderr)
	}
	r, err := store.OpenReader(drafted)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Meta.Preprocess.Draft {
		t.Fatalf("the drafted store's preprocessing %+v does not record jpeg_draft", r.Meta.Preprocess)
	}
	if a, b := readRows(t, exact), readRows(t, drafted); slices.Equal(a[0].logits, b[0].logits) {
		t.Fatalf("drafted logits %v equal the exact ones: nothing was drafted", b[0].logits)
	}
	if code, stderr := label(drafted); code != exitFatal || !strings.Contains(stderr, "jpeg_draft") {
		t.Fatalf("rerun without --jpeg-draft: exit %d, want 1 naming jpeg_draft\n%s", code, stderr)
	}
	if code, stderr := label(filepath.Join(t.TempDir(), "views"), "--jpeg-draft", "--views", "2"); code != exitUsage || !strings.Contains(stderr, "use one view (--jpeg-draft, --views)") {
		t.Fatalf("--jpeg-draft --views 2: exit %d, want 2\n%s", code, stderr)
	}
}

func writeNames(t *testing.T, k int) string {
	t.Helper()
	var b strings.Builder
	for i := range k {
		fmt.Fprintf(&b, "class%d\n", i)
	}
	p := filepath.Join(t.TempDir(), "names.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeClassMap(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "classes.map")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEXIFTransposeLabelling: --exif-transpose labels the upright image (other logits for an
// orientation-6 JPEG), says so in the summary, is recorded in the store's preprocessing, and
// a rerun without it is refused.
func TestEXIFTransposeLabelling(t *testing.T) {
	data := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(filepath.Join(data, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "dataset", "testdata", "exif", "orient-6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a", "photo.jpg"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(testdata, "models", "tiny_regnet.onnx")
	label := func(out string, extra ...string) (int, string, string) {
		args := append([]string{"--model", model, "--data", data, "--out", out, "--resize", "32",
			"--class-names", writeNames(t, 5), "--class-map", writeClassMap(t, "a\t0\n")}, extra...)
		return runInProcess(t, args...)
	}
	plain, upright := filepath.Join(t.TempDir(), "plain"), filepath.Join(t.TempDir(), "upright")
	code, stdout, stderr := label(plain)
	if code != exitOK {
		t.Fatalf("plain: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "not applied (as torchvision; --exif-transpose applies it)") {
		t.Errorf("plain summary does not say the orientation was not applied:\n%s", stdout)
	}
	code, stdout, stderr = label(upright, "--exif-transpose")
	if code != exitOK {
		t.Fatalf("--exif-transpose: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "applied (--exif-transpose)") || strings.Contains(stdout, "not applied") {
		t.Errorf("--exif-transpose summary does not say the orientation was applied:\n%s", stdout)
	}
	r, err := store.OpenReader(upright)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Meta.Preprocess.EXIFTranspose {
		t.Fatalf("the store's preprocessing %+v does not record exif_transpose", r.Meta.Preprocess)
	}
	if p, err := store.OpenReader(plain); err != nil || p.Meta.Preprocess.EXIFTranspose {
		t.Fatalf("the plain store records exif_transpose (%v)", err)
	}
	if a, b := readRows(t, plain), readRows(t, upright); slices.Equal(a[0].logits, b[0].logits) {
		t.Fatalf("upright logits %v equal the plain ones: nothing was transposed", b[0].logits)
	}
	if code, _, stderr := label(upright); code != exitFatal || !strings.Contains(stderr, "exif_transpose") {
		t.Fatalf("rerun without --exif-transpose: exit %d, want 1 naming exif_transpose\n%s", code, stderr)
	}
}
