package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/deitkd/deitkd/store"
)

// cardSubset is the model card's line for the committed test subset, "first N test images: C/N".
var cardSubset = regexp.MustCompile(`(?m)^first (\d+) test images: (\d+)/(\d+)\s*$`)

// TestTeacherCard reproduces the model card's number through deitkd: precompute with the demo
// teacher and no preprocessing flags (they come from the ONNX metadata) over the committed subset
// of the Fashion-MNIST test split, then the top-1 that `labels inspect` prints (store.Inspect). The
// count is read from the card, so card and test cannot drift apart. It must match exactly: PyTorch
// and the ONNX file agree on every image of the subset, and the smallest top-1 margin there
// (about 0.009, see scripts/make_fmnist_subset.py) is far above ONNX Runtime's rounding.
func TestTeacherCard(t *testing.T) {
	card, err := os.ReadFile(filepath.Join(testdata, "teacher", "regnety_fmnist.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := cardSubset.FindSubmatch(card)
	if m == nil {
		t.Fatalf("the model card has no line matching %s", cardSubset)
	}
	n, _ := strconv.Atoi(string(m[1]))
	want, _ := strconv.Atoi(string(m[2]))
	if of, _ := strconv.Atoi(string(m[3])); of != n {
		t.Fatalf("model card: %q counts out of %d, not %d", m[0], of, n)
	}

	out := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr := runInProcess(t, "--model", filepath.Join(testdata, "teacher", "regnety_fmnist.onnx"),
		"--data", "idx:"+filepath.Join(testdata, "fmnist", "t10k"), "--out", out)
	if code != exitOK {
		t.Fatalf("precompute: exit %d\n%s%s", code, stdout, stderr)
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Inspect(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Images != int64(n) || s.Labelled != int64(n) || s.Failures != 0 {
		t.Fatalf("store: %d images, %d labelled, %d failures; the card's subset has %d images", s.Images, s.Labelled, s.Failures, n)
	}
	got := int(math.Round(s.Top1 * float64(s.Labelled)))
	if got != want {
		t.Errorf("top-1 through precompute and labels inspect: %d/%d (%.4f); the model card says %d/%d", got, n, s.Top1, want, n)
	} else {
		t.Logf("top-1 %d/%d = %.4f, as the model card says", got, n, s.Top1)
	}
}
