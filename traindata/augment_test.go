package traindata_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/traindata"
)

// TestFixedTeacherAugment: with RandAugment, erasing and Mixup/CutMix on a single-view store,
// each row's pixels are RenderAugmented of its view and augmentation, mixed with its batch's
// mirrored row by its Mix; its targets are the λ-mix of the two rows' (labels and teacher
// probabilities); an epoch renders the same whenever it is rendered, from any batch on.
func TestFixedTeacherAugment(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 1, false)
	src, _ := dataset.Open(idxSpec("train"))
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	o := traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 7, Seed: 9, Probs: true,
		Augment: dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.6, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}},
		Log:     func(l string) { notes = append(notes, l) }}
	s, err := traindata.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "stored-teacher approximation") {
		t.Errorf("log %q does not say how mixed rows are targeted", notes)
	}
	plain := o
	plain.Augment.Mix = dataset.MixConfig{}
	ps, err := traindata.Open(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	cfg := renderConfig()
	K := s.Classes()
	var ops, erased, mixups, cutmixes int
	batches, unmixed := collect(t, s, 1), collect(t, ps, 1)
	for i, b := range batches {
		u := unmixed[i]
		n := b.Len()
		for r := range n {
			if len(b.Augment[r].Ops) > 0 {
				ops++
			}
			if b.Augment[r].Erase != (dataset.Erase{}) {
				erased++
			}
			img, _ := src.Load(b.ImageIndex[r], 1)
			own := make([]float32, 784)
			if err := dataset.RenderAugmented(own, img, b.View[r], b.Augment[r], 28, cfg); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(own, u.Images[r*784:(r+1)*784]) {
				t.Fatalf("%s: unmixed pixels differ from RenderAugmented of its view and augmentation", b.ImageID[r])
			}
			p := b.MixPartner[r]
			if p < 0 {
				if !slices.Equal(own, b.Images[r*784:(r+1)*784]) || b.MixLambda[r] != 1 || b.MixLabels[r] != b.Labels[r] {
					t.Fatalf("%s: an unmixed row is not its own view and label", b.ImageID[r])
				}
				continue
			}
			if p != n-1-r {
				t.Fatalf("row %d's partner is %d, want the mirrored row %d", r, p, n-1-r)
			}
			m := b.Mix[r]
			if m.CutMix {
				cutmixes++
			} else {
				mixups++
			}
			m.Apply(own, u.Images[p*784:(p+1)*784], 1, 28)
			if !slices.Equal(own, b.Images[r*784:(r+1)*784]) {
				t.Fatalf("%s: mixed pixels differ from Mix.Apply with the partner's view", b.ImageID[r])
			}
			if b.MixLambda[r] != m.Lambda || b.MixLabels[r] != b.Labels[p] || b.MixTeacherHard[r] != b.TeacherHard[p] || b.TeacherHard[r] != u.TeacherHard[r] {
				t.Fatalf("%s: mixed targets λ %v labels %d/%d teacher %d/%d", b.ImageID[r], b.MixLambda[r], b.Labels[r], b.MixLabels[r], b.TeacherHard[r], b.MixTeacherHard[r])
			}
			l, k := m.Lambda, float32(1-float64(m.Lambda))
			for j := range K {
				want := float32(u.TeacherProbs[r*K+j]*l) + float32(u.TeacherProbs[p*K+j]*k)
				if b.TeacherProbs[r*K+j] != want {
					t.Fatalf("%s: teacher probability %d is %v, the λ-mix %v", b.ImageID[r], j, b.TeacherProbs[r*K+j], want)
				}
			}
		}
	}
	if ops == 0 || erased == 0 || mixups == 0 || cutmixes == 0 {
		t.Errorf("rows with ops %d, erased %d, mixup %d, cutmix %d: want some of each", ops, erased, mixups, cutmixes)
	}
	// The same epoch again, and from batch 2 on (a resumed run), is the same pixels.
	again := collect(t, s, 1)
	var tail []traindata.Batch
	if err := s.Epoch(context.Background(), 1, 2, func(b *traindata.Batch) error {
		tail = append(tail, traindata.Batch{Images: append([]float32(nil), b.Images...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range batches {
		if !slices.Equal(batches[i].Images, again[i].Images) || i >= 2 && !slices.Equal(batches[i].Images, tail[i-2].Images) {
			t.Fatalf("batch %d renders differently the second time", i)
		}
	}
	other := collect(t, s, 2)
	if slices.Equal(other[0].Images, batches[0].Images) {
		t.Error("epochs 1 and 2 render the same first batch")
	}
}

func TestAugmentRefusals(t *testing.T) {
	ra, _ := dataset.ParseRandAugment("rand-m9")
	multi := makeStore(t, idxSpec("train"), 3, false)
	single := makeStore(t, idxSpec("train"), 1, false)
	for _, c := range []struct {
		name string
		o    traindata.Options
	}{
		{"randaugment with stored views", traindata.Options{Labels: multi, Data: idxSpec("train"), Augment: dataset.AugmentConfig{RandAugment: &ra}}},
		{"erase with stored views", traindata.Options{Labels: multi, Data: idxSpec("train"), Augment: dataset.AugmentConfig{EraseProb: 0.25}}},
		{"mix with stored views", traindata.Options{Labels: multi, Data: idxSpec("train"), Augment: dataset.AugmentConfig{Mix: dataset.MixConfig{MixupAlpha: 0.8, Prob: 1}}}},
		{"erase probability", traindata.Options{Labels: single, Data: idxSpec("train"), Augment: dataset.AugmentConfig{EraseProb: 1.5}}},
		{"mix alpha", traindata.Options{Labels: single, Data: idxSpec("train"), Augment: dataset.AugmentConfig{Mix: dataset.MixConfig{MixupAlpha: -1}}}},
	} {
		if _, err := traindata.Open(context.Background(), c.o); !errors.Is(err, traindata.ErrOptions) {
			t.Errorf("%s: err %v, want ErrOptions", c.name, err)
		}
	}
}
