package precompute_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// replayRow is a stored row with its replay parameters, copied out of ScanRows.
type replayRow struct {
	index  int64
	view   int32
	crop   [4]float32
	flip   bool
	logits []float32
	aug    dataset.Augment
	mix    *store.Mixing
}

func readReplay(t testing.TB, dir string) ([]replayRow, schema.Metadata) {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []replayRow
	for shard := range r.Manifest.Shards {
		err := r.ScanRows(context.Background(), shard, nil, func(_ int, s *store.StoredRow) error {
			rr := replayRow{index: s.ImageIndex, view: s.View, crop: s.Crop, flip: s.Flip, logits: append([]float32(nil), s.Logits...),
				aug: dataset.Augment{Ops: append([]dataset.AugmentOp(nil), s.Augment.Ops...), Erase: s.Augment.Erase}}
			if s.Mix != nil {
				m := *s.Mix
				rr.mix = &m
			}
			out = append(out, rr)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out, r.Meta
}

func deitAugment(t testing.TB) dataset.AugmentConfig {
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	return dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
}

// TestAugmentedViews: a store made with DeiT's augmentations is schema version 2 recording
// them; each random view's stored parameters are the draws of (seed, image, view), view 0
// has none; its logits are the teacher's on the pixels rebuilt from the stored parameters
// alone (own view augmented, the partner's view augmented, mixed); and a run interrupted by
// its limit and resumed stores the same rows, parameters included, as one run.
func TestAugmentedViews(t *testing.T) {
	const views, seed = 3, 9
	aug := deitAugment(t)
	base := precompute.Options{Model: model("tiny_regnet.onnx"), Data: filepath.Join(testdata, "images"),
		ClassMapFile: imagesClassMap(t), Workers: 2, Threads: 1, Views: views, Seed: seed, ShardRows: 4, Batch: 5, Augment: aug}
	whole := base
	whole.Out = filepath.Join(t.TempDir(), "whole")
	runJob(t, whole)
	rows, md := readReplay(t, whole.Out)
	if md.SchemaVersion != schema.Version || md.Augment == nil || !reflect.DeepEqual(*md.Augment, aug) {
		t.Fatalf("schema version %d, augment %+v: want %d and %+v", md.SchemaVersion, md.Augment, schema.Version, aug)
	}
	src, err := dataset.Open(base.Data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := md.Preprocess.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := dataset.ViewConfig{Seed: seed}.Defaults()
	size := cfg.Crop
	m := openTeacher(t, "tiny_regnet.onnx", 1)
	k := m.Info().NumClasses
	render := func(i, v int, a dataset.Augment) []float32 {
		img, err := src.Load(i, cfg.Channels)
		if err != nil {
			t.Fatal(err)
		}
		view, err := dataset.ViewFor(img.Width, img.Height, i, v, cfg, vc)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, dataset.TensorLen(cfg.Channels, size))
		if err := dataset.RenderAugmented(dst, img, view, a, size, cfg); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	stored := map[[2]int64]replayRow{}
	for _, r := range rows {
		stored[[2]int64{r.index, int64(r.view)}] = r
	}
	var mixed, cutmix, ops, erased int
	for _, r := range rows {
		i, v := int(r.index), int(r.view)
		if v == 0 {
			if len(r.aug.Ops) > 0 || r.aug.Erase != (dataset.Erase{}) || r.mix != nil {
				t.Fatalf("image %d view 0 (the eval view) stores %+v mix %+v, want none", i, r.aug, r.mix)
			}
		} else {
			want := aug.Draw(seed, i, v, size)
			if len(want.Ops) != len(r.aug.Ops) || len(want.Ops) > 0 && !reflect.DeepEqual(want.Ops, r.aug.Ops) || want.Erase != r.aug.Erase {
				t.Fatalf("image %d view %d stores %+v, the draw of (seed, image, view) is %+v", i, v, r.aug, want)
			}
			wm, ok := aug.Mix.Draw(seed, i, v, size)
			if ok != (r.mix != nil) || ok && wm != r.mix.Mix {
				t.Fatalf("image %d view %d stores mix %+v, drawn %+v (%v)", i, v, r.mix, wm, ok)
			}
		}
		x := render(i, v, r.aug)
		if r.mix != nil {
			mixed++
			if r.mix.CutMix {
				cutmix++
			}
			if r.mix.Index == r.index || r.mix.View < 1 {
				t.Fatalf("image %d view %d mixed with image %d view %d, want another image's random view", i, v, r.mix.Index, r.mix.View)
			}
			p, ok := stored[[2]int64{r.mix.Index, int64(r.mix.View)}]
			if !ok {
				t.Fatalf("partner image %d view %d is not stored", r.mix.Index, r.mix.View)
			}
			// The partner's pixels are its own stored row's, before that row's own mix.
			r.mix.Apply(x, render(int(p.index), int(p.view), p.aug), cfg.Channels, size)
		}
		ops += len(r.aug.Ops)
		if r.aug.Erase != (dataset.Erase{}) {
			erased++
		}
		want, err := m.Run(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, r.logits, want[:k]); d > 1e-5 {
			t.Fatalf("image %d view %d: stored logits differ by %g from the teacher's on the replayed pixels", i, v, d)
		}
	}
	if mixed == 0 || cutmix == 0 || cutmix == mixed || ops == 0 || erased == 0 {
		t.Errorf("%d rows: %d mixed (%d CutMix), %d ops, %d erased: want each kind present", len(rows), mixed, cutmix, ops, erased)
	}
	t.Logf("%d rows: %d mixed (%d CutMix), %d ops, %d erased", len(rows), mixed, cutmix, ops, erased)

	// A re-run writes the same files, byte for byte.
	rerun := base
	rerun.Out = filepath.Join(t.TempDir(), "rerun")
	runJob(t, rerun)
	if a, b := shardSums(t, whole.Out), shardSums(t, rerun.Out); !reflect.DeepEqual(a, b) {
		t.Fatalf("re-run shards %v, first run's %v", b, a)
	}

	part := base
	part.Out = filepath.Join(t.TempDir(), "part")
	part.Limit = 5
	runJob(t, part)
	part.Limit = 0
	runJob(t, part)
	again, _ := readReplay(t, part.Out)
	if !reflect.DeepEqual(again, rows) {
		t.Fatalf("resumed store differs from one run's (%d rows against %d)", len(again), len(rows))
	}

	plain := base
	plain.Augment = dataset.AugmentConfig{}
	plain.Out = part.Out
	if _, err := precompute.New(plain); err == nil || !strings.Contains(err.Error(), "schema_version") {
		t.Errorf("the store resumed without the augmentations: %v, want a mismatch naming the schema version", err)
	}
	from := base
	from.Augment, from.Views, from.Seed, from.ViewsFrom, from.Out = dataset.AugmentConfig{}, 0, 0, whole.Out, filepath.Join(t.TempDir(), "from")
	if _, err := precompute.New(from); !errors.Is(err, precompute.ErrViewsFrom) || !strings.Contains(err.Error(), schema.KeyAugment) {
		t.Errorf("views-from an augmented store: %v, want ErrViewsFrom naming %s", err, schema.KeyAugment)
	}
	one := base
	one.Views, one.Out = 1, filepath.Join(t.TempDir(), "one")
	if _, err := precompute.New(one); err == nil || !strings.Contains(err.Error(), "random views") {
		t.Errorf("augmentations with one view: %v", err)
	}
}

// shardSums is the sha256 of each shard a store's manifest lists, in order.
func shardSums(t testing.TB, dir string) []string {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sh := range r.Manifest.Shards {
		out = append(out, sh.SHA256)
	}
	return out
}
