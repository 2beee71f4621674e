package store

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
)

// augmentedMeta is testMeta as a version-2 store: DeiT's augmentation recorded.
func augmentedMeta(mode schema.Mode, dtype schema.DType, classes, k, views int, images int64) schema.Metadata {
	md := testMeta(mode, dtype, classes, k, views, images)
	ra, _ := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	md.SchemaVersion = schema.Version
	md.Augment = &dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
	return md
}

// TestReplayColumns writes rows with and without each replay parameter into a version-2 store
// of each format and mode and reads back exactly what was written (null where a row has none),
// through ScanRows and Export; a version-1 store refuses a row with them.
func TestReplayColumns(t *testing.T) {
	ops := []dataset.AugmentOp{{Name: "Rotate", Magnitude: -8.25}, {Name: "PosterizeIncreasing", Magnitude: 9}}
	box := dataset.Box{Top: 0.25, Left: 0.125, Height: 0.5, Width: 0.375}
	params := []struct {
		aug dataset.Augment
		mix *Mixing
	}{
		{}, // view 0: none
		{dataset.Augment{Ops: ops, Erase: dataset.Erase{Box: box, Seed: 1<<63 + 5}}, &Mixing{Index: 2, View: 3, Mix: dataset.Mix{Lambda: 0.625}}},
		{dataset.Augment{Ops: ops[:1]}, &Mixing{Index: 0, View: 1, Mix: dataset.Mix{Lambda: 0.75, CutMix: true, Box: box}}},
		{dataset.Augment{Erase: dataset.Erase{Box: box, Seed: 9}}, nil},
	}
	for _, f := range []Format{FormatParquet, FormatArrow} {
		for _, mode := range []schema.Mode{schema.ModeFull, schema.ModeTopK} {
			t.Run(string(f)+"-"+string(mode), func(t *testing.T) {
				dir := t.TempDir()
				md := augmentedMeta(mode, schema.Float16, 12, 3, len(params), 3)
				w, err := OpenWriter(dir, md, smallOpts(f))
				if err != nil {
					t.Fatal(err)
				}
				var want []Row
				for i := range int64(3) {
					for v, r := range synthRows(5, i, 12, len(params)) {
						r.Augment, r.Mix = params[v].aug, params[v].mix
						if err := w.Write(r); err != nil {
							t.Fatal(err)
						}
						want = append(want, r)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				r, err := OpenReader(dir)
				if err != nil {
					t.Fatal(err)
				}
				if r.Meta.SchemaVersion != schema.Version || r.Manifest.SchemaVersion != schema.Version {
					t.Fatalf("schema version %d (manifest %d), want %d", r.Meta.SchemaVersion, r.Manifest.SchemaVersion, schema.Version)
				}
				n := 0
				for shard := range r.Manifest.Shards {
					err := r.ScanRows(context.Background(), shard, nil, func(_ int, s *StoredRow) error {
						wr := want[n]
						n++
						var mix *Mixing
						if s.Mix != nil {
							m := *s.Mix
							mix = &m
						}
						if len(s.Augment.Ops) != len(wr.Augment.Ops) || (len(wr.Augment.Ops) > 0 && !reflect.DeepEqual(s.Augment.Ops, wr.Augment.Ops)) ||
							s.Augment.Erase != wr.Augment.Erase || !reflect.DeepEqual(mix, wr.Mix) {
							t.Errorf("row %d (view %d): read %+v mix %+v, wrote %+v mix %+v", n-1, wr.View, s.Augment, mix, wr.Augment, wr.Mix)
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				if n != len(want) {
					t.Fatalf("%d rows read, %d written", n, len(want))
				}
				if rep, err := Verify(context.Background(), dir); err != nil || len(rep.Problems) > 0 {
					t.Fatalf("Verify: %v %v", err, rep.Problems)
				}
				var buf bytes.Buffer
				if err := Export(context.Background(), r, &buf, "jsonl", 0); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(buf.String(), "\n")
				for _, s := range []string{`"randaugment":null,"erase_box":null,"erase_seed":null,"mix_index":null,"mix_view":null,"mix_lambda":null,"mix_box":null`,
					`"randaugment":[{"name":"Rotate","magnitude":-8.25},{"name":"PosterizeIncreasing","magnitude":9}],"erase_box":[0.25,0.125,0.5,0.375],"erase_seed":9223372036854775813,"mix_index":2,"mix_view":3,"mix_lambda":0.625,"mix_box":null`,
					`"mix_index":0,"mix_view":1,"mix_lambda":0.75,"mix_box":[0.25,0.125,0.5,0.375]`} {
					if !strings.Contains(buf.String(), s) {
						t.Errorf("jsonl lacks %s; first rows:\n%s", s, strings.Join(lines[:min(3, len(lines))], "\n"))
					}
				}
			})
		}
	}
	t.Run("version-1-refuses", func(t *testing.T) {
		w, err := OpenWriter(t.TempDir(), testMeta(schema.ModeFull, schema.Float32, 12, 0, 4, 3), smallOpts(FormatParquet))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		r := synthRows(5, 0, 12, 4)[1]
		r.Augment.Ops = ops
		if err := w.Write(r); !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "schema version 1") {
			t.Errorf("an augmented row in a version-1 store: %v", err)
		}
	})
}
