package traindata_test

import (
	"context"
	"errors"
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

// TestRows: Rows streams the stored rows in (image_index, view) order, each its stored view
// rendered as Render does with that view's target, Pixels its 8-bit picture; a sub-range is the
// same rows; a range outside the store is refused.
func TestRows(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 4, false)
	stored := readRows(t, dir)
	s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 3, Pixels: true, Probs: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.StoredRows() != len(stored) {
		t.Fatalf("StoredRows %d, the store has %d", s.StoredRows(), len(stored))
	}
	rows := func(lo, hi int) []traindata.Batch {
		var out []traindata.Batch
		err := s.Rows(context.Background(), lo, hi, func(b *traindata.Batch) error {
			c := *b
			c.Images, c.Pixels = slices.Clone(b.Images), slices.Clone(b.Pixels)
			c.ImageIndex, c.ImageID, c.View, c.TeacherHard = slices.Clone(b.ImageIndex), slices.Clone(b.ImageID), slices.Clone(b.View), slices.Clone(b.TeacherHard)
			out = append(out, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := flatten(rows(0, s.StoredRows()))
	if len(all.ids) != len(stored) {
		t.Fatalf("%d rows, want %d", len(all.ids), len(stored))
	}
	cfg := renderConfig()
	n := 0
	for _, b := range rows(0, s.StoredRows()) {
		for r := range b.Len() {
			v := b.View[r]
			if want := n / 4; b.ImageIndex[r] != want || v.Index != n%4 {
				t.Fatalf("row %d: image %d view %d, want image %d view %d", n, b.ImageIndex[r], v.Index, want, n%4)
			}
			row := stored[[2]any{b.ImageID[r], v.Index}]
			if v.Box != (dataset.Box{Top: row.crop[0], Left: row.crop[1], Height: row.crop[2], Width: row.crop[3]}) || v.Flip != row.flip || b.TeacherHard[r] != int(row.hard) {
				t.Fatalf("row %d: view %+v hard %d, stored %+v", n, v, b.TeacherHard[r], row)
			}
			for i, p := range b.Pixels[r*28*28 : (r+1)*28*28] {
				if got := (float32(p)/255 - float32(cfg.Mean[0])) / float32(cfg.Std[0]); got != b.Images[r*28*28+i] {
					t.Fatalf("row %d sample %d: pixel %d normalises to %v, the row's input is %v", n, i, p, got, b.Images[r*28*28+i])
				}
			}
			n++
		}
	}
	part := flatten(rows(5, 11))
	if !slices.Equal(part.ids, all.ids[5:11]) || !slices.Equal(part.views, all.views[5:11]) || !slices.Equal(part.pix, all.pix[5*784:11*784]) {
		t.Error("rows 5..10 differ from the same rows of the whole store")
	}
	for _, r := range [][2]int{{-1, 2}, {0, s.StoredRows() + 1}, {3, 3}} {
		if err := s.Rows(context.Background(), r[0], r[1], func(*traindata.Batch) error { return nil }); !errors.Is(err, traindata.ErrOptions) {
			t.Errorf("rows %v: %v, want ErrOptions", r, err)
		}
	}
}
