package traindata_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
	"github.com/deitkd/deitkd/traindata"
)

// makeAugmentedStore labels data with DeiT's augmentations stored (a real precompute run).
func makeAugmentedStore(t testing.TB, data string, views int) string {
	t.Helper()
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "augmented")
	o := precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: data, Out: dir,
		Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1, Views: views, Seed: 7, Scale: [2]float64{0.35, 1},
		Augment: dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatalf("precompute.New: %v", err)
	}
	defer job.Close()
	if _, err := job.Run(context.Background()); err != nil {
		t.Fatalf("precompute: %v", err)
	}
	return dir
}

// TestReplayAugmented: from an augmented store every epoch replays stored views whose pixels,
// through the teacher, give the stored logits (the partner rendered again from the store's
// settings, mixed in), each row's Augment and Mix are its stored row's, the ground truth of a
// mixed row is λ·own + (1−λ)·partner's label, and the hard teacher term is the row's own
// stored label (the teacher saw the mixed pixels). Train-time augmentation on top is refused.
func TestReplayAugmented(t *testing.T) {
	data := idxSpec("train")
	dir := makeAugmentedStore(t, data, 4)
	s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: data, Batch: 7, Seed: 3, Probs: true, Tau: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := teacher.Open(filepath.Join(testdata, "models", "tiny_gray.onnx"), teacher.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := mustReader(t, dir)
	type stored struct {
		aug dataset.Augment
		mix *store.Mixing
	}
	rows := map[[2]int64]stored{}
	labels := map[int64]int32{}
	for shard := range r.Manifest.Shards {
		err := r.ScanRows(context.Background(), shard, nil, func(_ int, st *store.StoredRow) error {
			sr := stored{aug: dataset.Augment{Ops: append([]dataset.AugmentOp(nil), st.Augment.Ops...), Erase: st.Augment.Erase}}
			if st.Mix != nil {
				mx := *st.Mix
				sr.mix = &mx
			}
			rows[[2]int64{st.ImageIndex, int64(st.View)}] = sr
			labels[st.ImageIndex] = st.Label
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tg, err := r.LoadTargets(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mixed, cutmix int
	for epoch := range 2 {
		for _, b := range collect(t, s, epoch) {
			logits, err := m.Run(b.Images, b.Len())
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.Len() {
				key := [2]int64{int64(b.ImageIndex[i]), int64(b.TargetView[i])}
				want := rows[key]
				tt, _ := tg.LookupIndex(key[0], b.TargetView[i])
				for k, w := range tt.Logits {
					if d := math.Abs(float64(logits[i*10+k] - w)); d > 1e-5 {
						t.Fatalf("image %d view %d logit %d: teacher on replayed pixels %v, stored %v", key[0], key[1], k, logits[i*10+k], w)
					}
				}
				if len(b.Augment[i].Ops) != len(want.aug.Ops) || b.Augment[i].Erase != want.aug.Erase {
					t.Fatalf("image %d view %d: Augment %+v, stored %+v", key[0], key[1], b.Augment[i], want.aug)
				}
				if b.MixTeacherHard[i] != b.TeacherHard[i] || b.MixPartner[i] != -1 {
					t.Fatalf("image %d view %d: mixed teacher label %d (own %d), partner row %d", key[0], key[1], b.MixTeacherHard[i], b.TeacherHard[i], b.MixPartner[i])
				}
				if want.mix == nil {
					if b.MixLambda[i] != 1 || b.MixLabels[i] != b.Labels[i] {
						t.Fatalf("image %d view %d (not mixed): λ %v, mixed label %d", key[0], key[1], b.MixLambda[i], b.MixLabels[i])
					}
					continue
				}
				mixed++
				if want.mix.CutMix {
					cutmix++
				}
				if b.Mix[i] != want.mix.Mix || b.MixLambda[i] != want.mix.Lambda || b.MixLabels[i] != int(labels[want.mix.Index]) {
					t.Fatalf("image %d view %d: mix %+v λ %v label %d, stored %+v (partner label %d)", key[0], key[1], b.Mix[i], b.MixLambda[i], b.MixLabels[i], *want.mix, labels[want.mix.Index])
				}
			}
		}
	}
	if mixed == 0 || cutmix == 0 || cutmix == mixed {
		t.Fatalf("%d mixed rows (%d CutMix): want both kinds replayed", mixed, cutmix)
	}
	t.Logf("%d mixed rows replayed (%d CutMix)", mixed, cutmix)

	_, err = traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: data, Batch: 7, Augment: dataset.AugmentConfig{EraseProb: 0.25}})
	if !errors.Is(err, traindata.ErrOptions) || !strings.Contains(err.Error(), "deitkd.augment") {
		t.Errorf("train-time augmentation on an augmented store: %v", err)
	}
}
