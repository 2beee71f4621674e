package traindata_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/traindata"
)

// TestRepeatedAug: with RepeatedAug an epoch has as many rows as images (RASampler's length),
// each of its images n times in a row, n distinct stored views of a multi-view store or n fresh
// random views of a single-view one; and it is the first Len() rows of the epoch ViewsPerImage n
// alone makes, pixel for pixel and target for target, so the two are one mechanism.
func TestRepeatedAug(t *testing.T) {
	for _, tc := range []struct {
		name  string
		views int // the store's
		aug   bool
	}{
		{"stored views", 4, false},
		{"fixed teacher", 1, false},
		{"fixed teacher with RandAugment and mixing", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 3
			dir := makeStore(t, idxSpec("train"), tc.views, false)
			open := func(repeated bool) (*traindata.Set, []string) {
				var notes []string
				o := traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 4, ViewsPerImage: n, RepeatedAug: repeated,
					Seed: 5, Probs: true, Workers: 2, Log: func(s string) { notes = append(notes, s) }}
				if tc.aug {
					ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
					if err != nil {
						t.Fatal(err)
					}
					o.Augment = dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.5, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
				}
				s, err := traindata.Open(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				return s, notes
			}
			ra, notes := open(true)
			long, _ := open(false)
			N := ra.Len()
			if ra.RowsPerEpoch() != N || ra.BatchesPerEpoch() != (N+3)/4 || long.RowsPerEpoch() != n*N {
				t.Fatalf("rows per epoch %d (%d batches), without RepeatedAug %d; want %d (%d) and %d",
					ra.RowsPerEpoch(), ra.BatchesPerEpoch(), long.RowsPerEpoch(), N, (N+3)/4, n*N)
			}
			if j := strings.Join(notes, "\n"); !strings.Contains(j, "repeated augmentation") {
				t.Errorf("no note of the repeated augmentation in %q", j)
			}
			for epoch := range 2 {
				got, full := flatten(collect(t, ra, epoch)), flatten(collect(t, long, epoch))
				if len(got.ids) != N {
					t.Fatalf("epoch %d: %d rows, want %d", epoch, len(got.ids), N)
				}
				// A mixed row's partner is in its batch, so a short last batch mixes otherwise:
				// with mixing compare the whole batches.
				m := N
				if tc.aug {
					m = N / 4 * 4
				}
				per, K := len(got.pix)/N, len(got.probs)/N
				if !slices.Equal(got.ids, full.ids[:N]) || !slices.Equal(got.views, full.views[:N]) ||
					!slices.Equal(got.pix[:m*per], full.pix[:m*per]) || !slices.Equal(got.probs[:m*K], full.probs[:m*K]) {
					t.Fatalf("epoch %d: the repeated-augmentation epoch is not the first %d rows of the %d-views-per-image epoch", epoch, N, n)
				}
				for i := 0; i < N; i += n {
					run := got.ids[i:min(i+n, N)]
					for _, id := range run {
						if id != run[0] {
							t.Fatalf("epoch %d rows %d..: images %v, want one image %d times", epoch, i, run, n)
						}
					}
					if slices.Contains(got.ids[:i], run[0]) || slices.Contains(got.ids[i+len(run):], run[0]) {
						t.Fatalf("epoch %d: %s appears outside its run of %d", epoch, run[0], n)
					}
					vs := got.views[i:min(i+n, N)]
					for a := range vs {
						for b := range a {
							if vs[a] == vs[b] {
								t.Fatalf("epoch %d: %s brings the same view twice: %v", epoch, run[0], vs)
							}
						}
					}
				}
			}
		})
	}
}

type flat struct {
	ids   []string
	views []string // box, flip, index and augmentation of each row, printed
	pix   []float32
	probs []float32
}

func flatten(bs []traindata.Batch) flat {
	var f flat
	for _, b := range bs {
		f.ids = append(f.ids, b.ImageID...)
		f.pix = append(f.pix, b.Images...)
		f.probs = append(f.probs, b.TeacherProbs...)
		for r := range b.Len() {
			v := fmt.Sprint(b.View[r])
			if b.Augment != nil {
				v += fmt.Sprint(b.Augment[r])
			}
			f.views = append(f.views, v)
		}
	}
	return f
}
