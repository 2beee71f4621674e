package traindata_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
	"github.com/deitkd/deitkd/traindata"
)

// TestRefusals: a store that does not fit the source or the student is refused, naming the
// metadata field, before any batch is made.
func TestRefusals(t *testing.T) {
	train := makeStore(t, idxSpec("train"), 1, false)
	// Same count as train, other ids: the train files under another prefix.
	other := filepath.Join(t.TempDir(), "other")
	for _, suffix := range []string{"-images-idx3-ubyte.gz", "-labels-idx1-ubyte.gz"} {
		b, err := os.ReadFile(filepath.Join(testdata, "idx", "train"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(other+suffix, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		o     traindata.Options
		field string
		want  error
	}{
		{"image count", traindata.Options{Labels: train, Data: idxSpec("t10k")}, "deitkd.dataset.image_count", traindata.ErrMismatch},
		{"id list", traindata.Options{Labels: train, Data: "idx:" + other}, "deitkd.dataset.id_hash", traindata.ErrMismatch},
		{"classes", traindata.Options{Labels: train, Data: idxSpec("train"), Classes: 1000}, "deitkd.num_classes", traindata.ErrMismatch},
		{"channels", traindata.Options{Labels: train, Data: idxSpec("train"), Channels: 3}, "deitkd.preprocess.channels", traindata.ErrMismatch},
		{"mean", traindata.Options{Labels: train, Data: idxSpec("train"), Mean: []float64{0.5}}, "deitkd.preprocess.mean", traindata.ErrMismatch},
		{"std", traindata.Options{Labels: train, Data: idxSpec("train"), Std: []float64{0.3}}, "deitkd.preprocess.std", traindata.ErrMismatch},
		{"views per image beyond the store's", traindata.Options{Labels: makeStore(t, idxSpec("train"), 4, true), Data: idxSpec("train"), ViewsPerImage: 5}, "5 views per image", traindata.ErrOptions},
		{"repeated augmentation beyond the store's views", traindata.Options{Labels: makeStore(t, idxSpec("train"), 4, true), Data: idxSpec("train"), ViewsPerImage: 5, RepeatedAug: true}, "5 views per image (repeated augmentation: distinct stored views), the store has 4", traindata.ErrOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := traindata.Open(context.Background(), tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Open: %v, want %v naming %s", err, tc.want, tc.field)
			}
		})
	}
	t.Run("eval source with other class names", func(t *testing.T) {
		s, err := traindata.Open(context.Background(), traindata.Options{Labels: train, Data: idxSpec("train")})
		if err != nil {
			t.Fatal(err)
		}
		ref := s.Meta()
		ref.ClassNames = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
		_, err = traindata.OpenEval(context.Background(), traindata.Options{Data: filepath.Join(testdata, "images")}, ref)
		if !errors.Is(err, traindata.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.class_names") {
			t.Fatalf("OpenEval: %v, want a class-names mismatch", err)
		}
	})
	t.Run("the same values written otherwise fit", func(t *testing.T) {
		// One value for all channels and the store's own numbers are the same preprocessing.
		s, err := traindata.Open(context.Background(), traindata.Options{Labels: train, Data: idxSpec("train"),
			Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1, Classes: 10, Size: 16})
		if err != nil {
			t.Fatal(err)
		}
		// The student's eval transform: the store's, at its own size.
		p, err := s.Preprocess()
		if err != nil {
			t.Fatal(err)
		}
		if p.Crop != 16 || p.Resize != 16 || p.Channels != 1 || !slices.Equal(p.Mean, fmMean) || !slices.Equal(p.Std, fmStd) || p.Interpolation != "bilinear" {
			t.Errorf("Preprocess %+v", p)
		}
	})
}

// TestReplay: every row of a multi-view store's epoch is exactly its stored view — the
// pixels are dataset.Render of the row's stored box and flip, at the student's size, and the
// teacher target is that view's — and each image brings ViewsPerImage distinct views.
func TestReplay(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 4, true)
	stored := readRows(t, dir)
	src, err := dataset.Open(idxSpec("train"))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := mustReader(t, dir).LoadTargets(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := renderConfig()
	for _, size := range []int{28, 20} {
		var notes []string
		s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"),
			Size: size, Batch: 3, ViewsPerImage: 2, Seed: 1, Probs: true, Tau: 2, Workers: 2, Log: func(n string) { notes = append(notes, n) }})
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Join(notes, "\n"); strings.Contains(n, "fixed teacher") || !strings.Contains(n, "4 views per image") {
			t.Fatalf("a 4-view store: notes %q, want it replayed, not taken for a fixed teacher", n)
		}
		per := size * size
		for epoch := range 2 {
			seen := map[string][]int{}
			for _, b := range collect(t, s, epoch) {
				for r := range b.Len() {
					id, v := b.ImageID[r], b.View[r]
					row, ok := stored[[2]any{id, v.Index}]
					if !ok {
						t.Fatalf("%s view %d is not in the store", id, v.Index)
					}
					if want := (dataset.Box{Top: row.crop[0], Left: row.crop[1], Height: row.crop[2], Width: row.crop[3]}); v.Box != want || v.Flip != row.flip {
						t.Fatalf("%s view %d: box %+v flip %v, stored %+v %v", id, v.Index, v.Box, v.Flip, want, row.flip)
					}
					img, _ := src.Load(b.ImageIndex[r], 1)
					want := make([]float32, per)
					if err := dataset.Render(want, img, dataset.View{Index: v.Index, Box: v.Box, Flip: v.Flip}, size, cfg); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(b.Images[r*per:(r+1)*per], want) {
						t.Fatalf("size %d epoch %d: pixels of %s view %d differ from Render of the stored box", size, epoch, id, v.Index)
					}
					if b.TargetView[r] != v.Index || b.TeacherHard[r] != int(row.hard) {
						t.Fatalf("%s view %d: target of view %d, hard %d; stored hard %d", id, v.Index, b.TargetView[r], b.TeacherHard[r], row.hard)
					}
					tt, _ := tg.Lookup(id, v.Index)
					if d := store.Dense(tt, 2, nil); !slices.Equal(b.TeacherProbs[r*10:(r+1)*10], d) {
						t.Fatalf("%s view %d: probabilities %v, Dense gives %v", id, v.Index, b.TeacherProbs[r*10:(r+1)*10], d)
					}
					if b.Labels[r] != src.Item(b.ImageIndex[r]).Label {
						t.Fatalf("%s: label %d, source says %d", id, b.Labels[r], src.Item(b.ImageIndex[r]).Label)
					}
					seen[id] = append(seen[id], v.Index)
				}
			}
			if len(seen) != src.Len() {
				t.Fatalf("epoch %d saw %d images of %d", epoch, len(seen), src.Len())
			}
			for id, vs := range seen {
				if len(vs) != 2 || vs[0] == vs[1] {
					t.Fatalf("epoch %d: %s came with views %v, want 2 distinct", epoch, id, vs)
				}
			}
		}
	}
}

// TestReplayIsWhatTheTeacherSaw runs the teacher on replayed pixels at its own resolution and
// gets the logits stored in the file: the student trains on the very pixels that were labelled.
func TestReplayIsWhatTheTeacherSaw(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 4, false)
	s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	m, err := teacher.Open(filepath.Join(testdata, "models", "tiny_gray.onnx"), teacher.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tg, err := mustReader(t, dir).LoadTargets(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	views := 0
	for _, b := range collect(t, s, 0) {
		logits, err := m.Run(b.Images, b.Len())
		if err != nil {
			t.Fatal(err)
		}
		for r := range b.Len() {
			tt, _ := tg.Lookup(b.ImageID[r], b.TargetView[r])
			for k, want := range tt.Logits {
				if d := math.Abs(float64(logits[r*10+k] - want)); d > 1e-5 {
					t.Fatalf("%s view %d logit %d: teacher on replayed pixels %v, stored %v", b.ImageID[r], b.TargetView[r], k, logits[r*10+k], want)
				}
			}
			if b.View[r].Index != 0 {
				views++
			}
		}
	}
	if views == 0 {
		t.Fatal("no random view drawn: the test would not cover them")
	}
}

func mustReader(t testing.TB, dir string) *store.Reader {
	t.Helper()
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDeterminism: the batches are a function of (seed, epoch), whatever the workers; another
// epoch or seed gives others.
func TestDeterminism(t *testing.T) {
	for _, views := range []int{1, 4} {
		dir := makeStore(t, idxSpec("train"), views, views > 1)
		open := func(seed uint64, workers int) *traindata.Set {
			s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 2, Seed: seed, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		a, b := open(5, 1), open(5, 3)
		key := func(bs []traindata.Batch) string {
			var sb strings.Builder
			for _, x := range bs {
				for r := range x.Len() {
					sb.WriteString(x.ImageID[r])
					sb.WriteByte(' ')
					fmt.Fprintf(&sb, "%+v", x.View[r])
					sb.WriteByte(';')
				}
			}
			return sb.String()
		}
		for epoch := range 3 {
			x, y := collect(t, a, epoch), collect(t, b, epoch)
			if key(x) != key(y) {
				t.Fatalf("%d views epoch %d: 1 and 3 workers differ:\n%s\n%s", views, epoch, key(x), key(y))
			}
			for i := range x {
				if !slices.Equal(x[i].Images, y[i].Images) {
					t.Fatalf("%d views epoch %d batch %d: pixels differ between worker counts", views, epoch, i)
				}
			}
		}
		if key(collect(t, a, 0)) == key(collect(t, a, 1)) {
			t.Errorf("%d views: epochs 0 and 1 are the same", views)
		}
		if key(collect(t, a, 0)) == key(collect(t, open(6, 2), 0)) {
			t.Errorf("%d views: seeds 5 and 6 give the same epoch", views)
		}
	}
}

// TestFixedTeacher: with one view per image every row is a fresh random view of this epoch,
// rendered as dataset.Render renders it, against the image's one (view 0) target.
func TestFixedTeacher(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 1, false)
	stored := readRows(t, dir)
	src, _ := dataset.Open(idxSpec("train"))
	var notes []string
	s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 4, ViewsPerImage: 2,
		Seed: 9, Log: func(l string) { notes = append(notes, l) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "fixed teacher") {
		t.Errorf("log %q does not say fixed teacher", notes)
	}
	boxes := map[dataset.Box]bool{}
	cfg := renderConfig()
	for epoch := range 2 {
		for _, b := range collect(t, s, epoch) {
			for r := range b.Len() {
				v := b.View[r]
				if v.Index < 1 || b.TargetView[r] != 0 {
					t.Fatalf("row %s: view %d target %d, want a random view against view 0", b.ImageID[r], v.Index, b.TargetView[r])
				}
				if b.TeacherHard[r] != int(stored[[2]any{b.ImageID[r], 0}].hard) {
					t.Fatalf("%s: teacher label %d, view 0's is %d", b.ImageID[r], b.TeacherHard[r], stored[[2]any{b.ImageID[r], 0}].hard)
				}
				img, _ := src.Load(b.ImageIndex[r], 1)
				want := make([]float32, 28*28)
				if err := dataset.Render(want, img, v, 28, cfg); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(b.Images[r*784:(r+1)*784], want) {
					t.Fatalf("%s: pixels differ from Render of the row's view", b.ImageID[r])
				}
				boxes[v.Box] = true
			}
		}
	}
	if len(boxes) < 10 {
		t.Errorf("only %d distinct boxes in 20 random views", len(boxes))
	}
}

// TestEval: view 0 of every image in source order, labels from the source; with an eval store,
// its stored view-0 boxes and teacher labels.
func TestEval(t *testing.T) {
	train := makeStore(t, idxSpec("train"), 1, false)
	ts, err := traindata.Open(context.Background(), traindata.Options{Labels: train, Data: idxSpec("train")})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := dataset.Open(idxSpec("t10k"))
	cfg := renderConfig()
	withStore := makeStore(t, idxSpec("t10k"), 1, false)
	for _, labels := range []string{"", withStore} {
		e, err := traindata.OpenEval(context.Background(), traindata.Options{Data: idxSpec("t10k"), Labels: labels, Batch: 2}, ts.Meta())
		if err != nil {
			t.Fatal(err)
		}
		i, right := 0, 0
		for _, b := range collect(t, e, -1) {
			if (b.TeacherHard == nil) != (labels == "") {
				t.Fatalf("store %q: teacher labels %v", labels, b.TeacherHard)
			}
			for r := range b.Len() {
				img, _ := src.Load(i, 1)
				want := make([]float32, 784)
				if err := dataset.Preprocess(want, img, cfg); err != nil {
					t.Fatal(err)
				}
				if b.TeacherHard != nil && b.TeacherHard[r] == b.Labels[r] {
					right++
				}
				if b.ImageIndex[r] != i || b.View[r].Index != 0 || !slices.Equal(b.Images[r*784:(r+1)*784], want) || b.Labels[r] != src.Item(i).Label {
					t.Fatalf("store %q row %d: image %d view %d label %d; want image %d's centre view, label %d", labels, r, b.ImageIndex[r], b.View[r].Index, b.Labels[r], i, src.Item(i).Label)
				}
				i++
			}
		}
		if i != src.Len() {
			t.Fatalf("store %q: %d eval rows of %d images", labels, i, src.Len())
		}
		acc, n := e.TeacherAccuracy()
		if labels == "" && n != 0 || labels != "" && (n != i || acc != float64(right)/float64(i)) {
			t.Errorf("store %q: teacher accuracy %v of %d, batches say %d/%d", labels, acc, n, right, i)
		}
	}
}

// TestStop: an error from the consumer or a cancelled context ends the stream and comes back.
func TestStop(t *testing.T) {
	dir := makeStore(t, idxSpec("train"), 1, false)
	s, err := traindata.Open(context.Background(), traindata.Options{Labels: dir, Data: idxSpec("train"), Batch: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	n := 0
	err = s.Epoch(context.Background(), 0, 0, func(*traindata.Batch) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("Epoch: %v after %d batches, want the consumer's error after 2", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = s.Epoch(ctx, 0, 0, func(*traindata.Batch) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("Epoch: %v after %d batches, want canceled after 1", err, n)
	}
	// From a later batch: the same batches as a whole epoch's tail.
	all := collect(t, s, 4)
	var tail []string
	if err := s.Epoch(context.Background(), 4, 3, func(b *traindata.Batch) error { tail = append(tail, b.ImageID[0]); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(tail) != len(all)-3 || tail[0] != all[3].ImageID[0] {
		t.Fatalf("from batch 3: %v, whole epoch %d batches starting %v", tail, len(all), all[3].ImageID)
	}
}
