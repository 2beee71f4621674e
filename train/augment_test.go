package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/train"
)

// settingsOf runs o for zero epochs and returns run.json's settings and the log.
func settingsOf(t *testing.T, o train.Options) (map[string]any, string) {
	t.Helper()
	var log []string
	o.Epochs, o.Log = 0, func(l string) { log = append(log, l) }
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(o.Out, train.RunFile))
	if err != nil {
		t.Fatal(err)
	}
	var run struct{ Settings map[string]any }
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	return run.Settings, strings.Join(log, "\n")
}

// TestRecipeAugment: recipe deit turns DeiT's augmentation on against a fixed teacher, each
// option given replaces its part literally (0: off), a store with stored views keeps its
// views (said in the log), and the default recipe augments nothing; run.json records the
// resolved augmentation.
func TestRecipeAugment(t *testing.T) {
	deit := func(t *testing.T, views int) train.Options {
		o := options(t, filepath.Join(t.TempDir(), "run"), student.DistillHard, 0, 1e-3)
		o.Labels, o.Recipe = labels(t, "train", views), student.RecipeDeiT
		return o
	}
	want := map[string]any{"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 1.0, "switch_prob": 0.5}
	st, log := settingsOf(t, deit(t, 1))
	if st["randaugment"] != "rand-m9-n2-mstd0.5-inc1-p0.5" || st["erase_prob"] != 0.25 || !reflect.DeepEqual(st["mix"], want) {
		t.Errorf("deit, single-view store: settings %v", st)
	}
	if !strings.Contains(log, "stored-teacher approximation") {
		t.Errorf("log does not state the mixed targets:\n%s", log)
	}
	o := deit(t, 1)
	o.EraseProb, o.CutMixAlpha, o.RandAugment = ptr(0.0), ptr(0.0), &dataset.RandAugment{}
	st, _ = settingsOf(t, o)
	if _, ok := st["randaugment"]; ok || st["erase_prob"] != nil || st["mix"].(map[string]any)["cutmix_alpha"] != 0.0 || st["mix"].(map[string]any)["mixup_alpha"] != 0.8 {
		t.Errorf("deit with RandAugment, erasing and CutMix off: settings %v", st)
	}
	st, log = settingsOf(t, deit(t, 4))
	if st["randaugment"] != nil || st["erase_prob"] != nil || st["mix"] != nil || !strings.Contains(log, "replayed as stored") {
		t.Errorf("deit, stored views: settings %v\n%s", st, log)
	}
	def := options(t, filepath.Join(t.TempDir(), "run"), student.DistillHard, 0, 0)
	def.Labels = labels(t, "train", 1)
	if st, _ = settingsOf(t, def); st["randaugment"] != nil || st["erase_prob"] != nil || st["mix"] != nil {
		t.Errorf("default recipe: settings %v", st)
	}
	// Literal settings: mixup with a mix probability of 0 mixes nothing; with 1, Mixup alone.
	def.Out, def.MixupAlpha, def.MixProb = filepath.Join(t.TempDir(), "run"), ptr(0.8), ptr(0.0)
	if st, _ = settingsOf(t, def); st["mix"] != nil {
		t.Errorf("mix probability 0: settings %v", st)
	}
	def.Out, def.MixProb = filepath.Join(t.TempDir(), "run"), ptr(1.0)
	if st, _ = settingsOf(t, def); !reflect.DeepEqual(st["mix"], map[string]any{"mixup_alpha": 0.8, "cutmix_alpha": 0.0, "prob": 1.0, "switch_prob": 0.0}) {
		t.Errorf("mixup alone: settings %v", st)
	}
	def.Out, def.MixProb = filepath.Join(t.TempDir(), "run"), ptr(1.5)
	if _, err := train.New(context.Background(), def); err == nil || !strings.Contains(err.Error(), "mix probability 1.5") {
		t.Errorf("mix probability 1.5: %v", err)
	}
}

// TestResumeAugmented: a fixed-teacher run with RandAugment, erasing, Mixup and CutMix,
// interrupted mid-epoch and resumed, writes the metrics of the uninterrupted run exactly (the
// augmentations are drawn from seed, epoch and image).
func TestResumeAugmented(t *testing.T) {
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	opts := func(out string) train.Options {
		o := options(t, out, student.DistillSoft, 3, 0)
		o.Labels = labels(t, "train", 1)
		o.RandAugment, o.EraseProb, o.MixupAlpha, o.CutMixAlpha, o.MixProb, o.MixSwitch = &ra, ptr(0.25), ptr(0.8), ptr(1.0), ptr(1.0), ptr(0.5)
		return o
	}
	whole := t.TempDir()
	if _, err := runJob(context.Background(), opts(whole)); err != nil {
		t.Fatal(err)
	}
	cut := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := opts(cut)
	o.Progress = func(p train.Progress) {
		if p.Phase == "train" && p.Epoch == 2 && p.Batch == 1 {
			cancel()
		}
	}
	if _, err := runJob(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want canceled", err)
	}
	o = opts(cut)
	o.Resume = true
	if _, err := runJob(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if a, b := stripTimes(records(t, whole)), stripTimes(records(t, cut)); !reflect.DeepEqual(a, b) {
		t.Errorf("resumed augmented run differs:\n%v\n%v", a, b)
	}
}
