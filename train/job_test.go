package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
	"github.com/deitkd/deitkd/traindata"
)

func ptr[T any](v T) *T { return &v }

// recorded runs o for zero epochs and returns run.json's recipe and model config.
func recorded(t *testing.T, o train.Options) (recipe, model map[string]any) {
	t.Helper()
	o.Epochs = 0
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(o.Out, train.RunFile))
	if err != nil {
		t.Fatal(err)
	}
	var run struct{ Recipe, Model map[string]any }
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	return run.Recipe, run.Model
}

// TestRecipePolicy: New fills the recipe in once — the named recipe, then each option
// literally; a student without the distillation token trains on labels unless told
// otherwise; DeiT's recipe brings its drop-path, which an explicit 0 turns off.
func TestRecipePolicy(t *testing.T) {
	base := func(t *testing.T) train.Options {
		o := options(t, filepath.Join(t.TempDir(), "run"), student.DistillHard, 0, 0)
		o.Distill = nil
		return o
	}
	loss := func(r map[string]any) map[string]any { return r["loss"].(map[string]any) }
	t.Run("distill unset: hard", func(t *testing.T) {
		if r, _ := recorded(t, base(t)); loss(r)["distill"] != "hard" || r["recipe"] != "default" || r["drop_path"] != 0.0 {
			t.Errorf("recipe %v", r)
		}
	})
	t.Run("no distillation token: none", func(t *testing.T) {
		o := base(t)
		o.Arch.NoDistToken = true
		if r, m := recorded(t, o); loss(r)["distill"] != "none" || m["no_dist_token"] != true {
			t.Errorf("recipe %v, model %v", r, m)
		}
	})
	t.Run("no distillation token, distill given: refused", func(t *testing.T) {
		o := base(t)
		o.Arch.NoDistToken, o.Distill = true, ptr(student.DistillSoft)
		if _, err := runJob(context.Background(), o); !errors.Is(err, student.ErrConfig) || !strings.Contains(err.Error(), "needs the distillation token") {
			t.Errorf("soft without the token: %v", err)
		}
	})
	t.Run("deit: drop-path 0.1, or 0 given", func(t *testing.T) {
		o := base(t)
		o.Recipe, o.LR = student.RecipeDeiT, 1e-3 // the recipe's 5e-4·2/512 is below its min-lr
		if r, m := recorded(t, o); r["drop_path"] != 0.1 || r["recipe"] != "deit" || m["drop_path"] != nil {
			t.Errorf("deit recipe %v, model %v", r, m)
		}
		o = base(t)
		o.Recipe, o.LR, o.DropPath, o.WD, o.Warmup = student.RecipeDeiT, 1e-3, ptr(0.0), ptr(0.0), &train.Warmup{}
		if r, _ := recorded(t, o); r["drop_path"] != 0.0 || r["wd"] != 0.0 || r["warmup_epochs"] != 0.0 || r["warmup_frac"] != 0.0 {
			t.Errorf("deit recipe with zeros given %v", r)
		}
	})
}

// TestNewRefusesBeforeAnyStep: New refuses a store that does not fit the student, and options
// no run can use, writing nothing.
func TestNewRefusesBeforeAnyStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*train.Options)
		want error
		text string
	}{
		{"other mean", func(o *train.Options) { o.Mean = []float64{0.5} }, traindata.ErrMismatch, "deitkd.preprocess.mean"},
		{"three channels", func(o *train.Options) { o.Arch.Channels = 3 }, traindata.ErrMismatch, "deitkd.preprocess.channels"},
		{"batch 0", func(o *train.Options) { o.Batch = 0 }, train.ErrOptions, "batch 0"},
		{"min-lr above lr", func(o *train.Options) { o.LR, o.MinLR = 1e-3, ptr(1e-2) }, train.ErrOptions, "0.01 (given) is above the peak 0.001 (given)"},
		{"no output folder", func(o *train.Options) { o.Out = "" }, train.ErrOptions, "output folder"},
		{"export format", func(o *train.Options) { o.Export = []string{"onnx", "pt"} }, train.ErrOptions, `format "pt"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t, filepath.Join(t.TempDir(), "run"), student.DistillHard, 1, 0)
			out := o.Out
			tc.edit(&o)
			_, err := train.New(context.Background(), o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("New: %v, want %v naming %q", err, tc.want, tc.text)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run created %s", out)
			}
		})
	}
}

// TestDefaultAugScale: a fixed-teacher run without an augmentation scale crops nothing in a
// short run, keeps 0.35–1 of small images in a long one, and keeps the store's range for long
// runs on large images; each choice is said.
func TestDefaultAugScale(t *testing.T) {
	for _, c := range []struct {
		size, epochs int
		want         [2]float64
		say          string
	}{
		{28, 5, [2]float64{1, 1}, "a 5-epoch run (under 30)"},
		{224, 29, [2]float64{1, 1}, "a 29-epoch run"},
		{28, 30, [2]float64{0.35, 1}, "28-pixel images (under 64)"},
		{224, 300, [2]float64{}, ""},
	} {
		got, why := train.DefaultAugScale(c.size, c.epochs)
		if got != c.want || !strings.Contains(why, c.say) || (c.say == "") != (why == "") {
			t.Errorf("DefaultAugScale(%d, %d) = %v %q, want %v saying %q", c.size, c.epochs, got, why, c.want, c.say)
		}
	}
}
