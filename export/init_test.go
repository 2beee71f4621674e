package export

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/student"
)

// trainedTiny is a tiny student after a few hard-distillation steps from testModel's weights,
// with its preprocessing and class names recorded.
func trainedTiny(t *testing.T, c student.Config) *student.Trainer {
	t.Helper()
	m := testModel(t, c, 21)
	tc, err := student.NewRecipe(student.RecipeDefault, 4)
	if err != nil {
		t.Fatal(err)
	}
	tc.StepsPerEpoch, tc.Loss.Distill = 10, student.DistillHard
	tr, err := student.NewTrainer(m, tc)
	if err != nil {
		t.Fatal(err)
	}
	x := testImages(c, 4, 3)
	for range 3 {
		if _, err := tr.TrainStep(student.Batch{Images: x, Labels: []int{0, 1, 2, 3}, TeacherHard: []int{3, 2, 1, 0}}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// TestLoadInitRoundTrip: a trained student exported to safetensors and saved as a checkpoint,
// each loaded back into the same config, gives the same outputs bit for bit; into a larger
// image its positional embedding is resampled and its outputs are finite; into another depth
// it is refused.
func TestLoadInitRoundTrip(t *testing.T) {
	c := student.Config{Dim: 32, Depth: 2, Heads: 2}.WithDefaults()
	tr := trainedTiny(t, c)
	m := tr.Model
	dir := t.TempDir()
	st := filepath.Join(dir, "student.safetensors")
	var buf bytes.Buffer
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	if err := Safetensors(&buf, m, Options{ClassNames: names}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "student.ckpt")
	if err := tr.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	x := testImages(c, 5, 8)
	wantCls, wantDist, err := m.Infer(x, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, format string }{{st, "safetensors"}, {ckpt, "deitkd checkpoint"}} {
		t.Run(f.format, func(t *testing.T) {
			got, r, err := LoadInit(f.path, c, student.InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Format != f.format || r.Source != f.path || len(r.Notes()) != 0 {
				t.Errorf("report %+v, notes %q", r, r.Notes())
			}
			if f.format == "safetensors" && !slices.Equal(r.ClassNames, names) {
				t.Errorf("class names %q, want the file's %q", r.ClassNames, names)
			}
			cls, dist, err := got.Infer(x, 5)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cls, wantCls) || !slices.Equal(dist, wantDist) {
				t.Errorf("outputs differ from the trained student's by %g, %g", maxAbsDiff(t, cls, wantCls), maxAbsDiff(t, dist, wantDist))
			}
		})
	}
	t.Run("larger image", func(t *testing.T) {
		big := c
		big.ImageSize = 56
		got, r, err := LoadInit(st, big, student.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.GridFrom != 7 || r.GridTo != 14 || len(r.Notes()) != 1 {
			t.Errorf("report %+v, notes %q", r, r.Notes())
		}
		cls, dist, err := got.Infer(testImages(big, 2, 9), 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range append(cls, dist...) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite logit %v", v)
			}
		}
	})
	t.Run("wrong depth", func(t *testing.T) {
		deep := c
		deep.Depth = 3
		for _, p := range []string{st, ckpt} {
			_, _, err := LoadInit(p, deep, student.InitOptions{})
			if !errors.Is(err, student.ErrMismatch) || !strings.Contains(err.Error(), "blocks.2.norm1.weight") || !strings.Contains(err.Error(), p) {
				t.Errorf("%s into depth 3: %v", p, err)
			}
		}
	})
	t.Run("not a weights file", func(t *testing.T) {
		bad := filepath.Join(dir, "notes.txt")
		os.WriteFile(bad, []byte("hello, this is not a model"), 0o644)
		if _, _, err := LoadInit(bad, c, student.InitOptions{}); !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), bad) {
			t.Errorf("a text file: %v", err)
		}
	})
}
