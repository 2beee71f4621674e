package precompute_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/half"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/teacher"
)

// imagesConfig is tiny_regnet's preprocessing as its metadata gives it.
func imagesConfig(t testing.TB) dataset.Config {
	t.Helper()
	m := openTeacher(t, "tiny_regnet.onnx", 1)
	p, _, ok, err := schema.ModelMetadata(m.Info().Metadata)
	if err != nil || !ok {
		t.Fatalf("tiny_regnet metadata: ok %v, %v", ok, err)
	}
	cfg, err := dataset.Config{Resize: p.Resize, Crop: p.Crop, Interpolation: p.Interpolation,
		Mean: p.Mean, Std: p.Std, Channels: 3}.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestImagesEndToEnd runs the pipeline over every kind of test image and checks each stored
// row against the teacher run on the same tensor, made independently with dataset's Render.
// GIFs are not in torchvision's IMG_EXTENSIONS, the default listing: Extensions names them, and
// the store records the list.
func TestImagesEndToEnd(t *testing.T) {
	exts := []string{"JPG", ".jpeg", ".png", ".gif", ".webp"}
	canon := []string{".gif", ".jpeg", ".jpg", ".png", ".webp"}
	src, err := dataset.OpenWith(filepath.Join(testdata, "images"), dataset.Options{Extensions: exts})
	if err != nil {
		t.Fatal(err)
	}
	cfg := imagesConfig(t)
	n := src.Len()
	per := dataset.TensorLen(3, cfg.Crop)
	input := make([]float32, 0, n*per)
	boxes := make([]dataset.Box, n)
	for i := range n {
		x, v := reference(t, src, i, 0, cfg, dataset.ViewConfig{})
		input = append(input, x...)
		boxes[i] = v.Box
	}
	// The class map sends jpeg → 4, other → "b_class" (1), png → 0.
	classMap := writeFile(t, "map.tsv", "jpeg\t4\nother\tb_class\npng\t0\n")
	teacherClass := []int32{4, 1, 0}

	for _, tc := range []struct {
		name   string
		model  string
		batch  int
		format store.Format
	}{
		{"dynamic batch", "tiny_regnet.onnx", 0, ""},
		{"fixed batch 4, batch 6, arrow", "tiny_regnet_fixed4.onnx", 6, store.FormatArrow},
		{"batch 1", "tiny_regnet.onnx", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openTeacher(t, tc.model, 1)
			want, err := m.Run(input, n)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "labels")
			sum := runJob(t, precompute.Options{Model: model(tc.model), Data: filepath.Join(testdata, "images"), Out: out,
				Extensions: exts, ClassMapFile: classMap, Batch: tc.batch, Format: tc.format, Workers: 3, Threads: 1})
			if sum.Done != int64(n) || sum.Failed != 0 || sum.Rows != int64(n) {
				t.Fatalf("summary: done %d failed %d rows %d, want %d images", sum.Done, sum.Failed, sum.Rows, n)
			}
			rows, md := readStore(t, out)
			if len(rows) != n {
				t.Fatalf("%d rows, want %d", len(rows), n)
			}
			if md.Preprocess.Resize != cfg.Resize || md.Preprocess.Crop != cfg.Crop || md.Preprocess.Channels != 3 ||
				md.Dataset.IDHash != dataset.IDHash(src) || md.Dataset.ImageCount != int64(n) || !slices.Equal(md.Dataset.Extensions, canon) ||
				md.Teacher.SHA256 != m.Info().SHA256 || md.Teacher.InputName != m.Info().Input.Name ||
				md.Store.Mode != schema.ModeFull || md.Store.DType != schema.Float32 || md.Views.Count != 1 {
				t.Errorf("metadata %+v", md)
			}
			k := m.Info().NumClasses
			var worst float64
			bitEqual := 0
			for i, r := range rows {
				it := src.Item(i)
				if r.index != int64(i) || r.id != it.ID || r.view != 0 || r.flip {
					t.Fatalf("row %d: index %d id %s view %d flip %v, want index %d id %s view 0", i, r.index, r.id, r.view, r.flip, i, it.ID)
				}
				if r.label != teacherClass[it.Label] {
					t.Errorf("%s: label %d, want teacher class %d of dataset class %d", r.id, r.label, teacherClass[it.Label], it.Label)
				}
				b := boxes[i]
				if r.crop != [4]float32{b.Top, b.Left, b.Height, b.Width} {
					t.Errorf("%s: crop %v, want dataset's centre box %+v", r.id, r.crop, b)
				}
				ref := want[i*k : (i+1)*k]
				d := maxAbsDiff(t, r.logits, ref)
				worst = max(worst, d)
				if slices.Equal(r.logits, ref) {
					bitEqual++
				}
				if r.hard != argmax(ref) {
					t.Errorf("%s: teacher_hard %d, argmax %d", r.id, r.hard, argmax(ref))
				}
			}
			if worst > 1e-6 {
				t.Errorf("stored logits differ from Model.Run on the same tensors by up to %g", worst)
			}
			t.Logf("%d/%d rows bit-equal to Model.Run, max |diff| %g", bitEqual, n, worst)
		})
	}
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// TestTopKFloat16 checks the compact store against a full one of the same run.
func TestTopKFloat16(t *testing.T) {
	classMap := imagesClassMap(t)
	base := precompute.Options{Model: model("tiny_regnet.onnx"), Data: filepath.Join(testdata, "images"),
		ClassMapFile: classMap, Workers: 2, Threads: 1, Views: 2, Seed: 3}
	full, top := base, base
	full.Out = filepath.Join(t.TempDir(), "full")
	top.Out = filepath.Join(t.TempDir(), "top")
	top.StoreMode, top.TopK, top.DType = schema.ModeTopK, 3, schema.Float16
	runJob(t, full)
	runJob(t, top)
	fr, _ := readStore(t, full.Out)
	tr, md := readStore(t, top.Out)
	if md.Store != (schema.StoreConfig{Mode: schema.ModeTopK, K: 3, DType: schema.Float16}) {
		t.Fatalf("store metadata %+v", md.Store)
	}
	if len(fr) != len(tr) {
		t.Fatalf("%d full rows, %d top-k rows", len(fr), len(tr))
	}
	for i, f := range fr {
		r := tr[i]
		if r.index != f.index || r.view != f.view || r.crop != f.crop || r.flip != f.flip || r.hard != f.hard {
			t.Fatalf("row %d: top-k row %+v differs from full row %+v", i, r, f)
		}
		order := make([]int32, len(f.logits))
		for c := range order {
			order[c] = int32(c)
		}
		slices.SortStableFunc(order, func(a, b int32) int {
			switch {
			case f.logits[a] > f.logits[b]:
				return -1
			case f.logits[a] < f.logits[b]:
				return 1
			}
			return 0
		})
		if !slices.Equal(r.topIdx, order[:3]) {
			t.Errorf("%s view %d: top-3 %v, want %v", r.id, r.view, r.topIdx, order[:3])
		}
		var s float64
		for c, x := range order[:3] {
			h, _ := half.FromFloat32(f.logits[x]) // as the writer rounds, to nearest even
			if want := half.ToFloat32(h); r.topLogit[c] != want {
				t.Errorf("%s view %d: top logit %d is %v, want float16(%v) = %v", r.id, r.view, c, r.topLogit[c], f.logits[x], want)
			}
		}
		m := float64(f.logits[order[0]])
		for _, x := range f.logits {
			s += math.Exp(float64(x) - m)
		}
		if lse := m + math.Log(s); math.Abs(float64(r.lse)-lse) > 1e-5 {
			t.Errorf("%s view %d: logsumexp %v, want %v", r.id, r.view, r.lse, lse)
		}
	}
}

// TestIDX runs a 28×28 grey teacher without metadata over MNIST-format files: preprocessing
// from flags, images passed unchanged (no resize), labels from the label file.
func TestIDX(t *testing.T) {
	spec := "idx:" + filepath.Join(testdata, "idx", "t10k")
	src, err := dataset.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "labels")
	var warnings []string
	o := precompute.Options{Model: model("tiny_gray.onnx"), Data: spec, Out: out, Mean: []float64{0.286}, Std: []float64{0.353},
		Workers: 1, Threads: 1, Warn: func(s string) { warnings = append(warnings, s) }}
	sum := runJob(t, o)
	if sum.Done != int64(src.Len()) {
		t.Fatalf("done %d of %d", sum.Done, src.Len())
	}
	if len(warnings) != 0 {
		t.Errorf("warnings with mean and std given: %q", warnings)
	}
	rows, md := readStore(t, out)
	wantPre := dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
	if md.Preprocess.Resize != wantPre.Resize || md.Preprocess.Crop != 28 || md.Preprocess.Channels != 1 ||
		!slices.Equal(md.Preprocess.Mean, wantPre.Mean) || !slices.Equal(md.Preprocess.Std, wantPre.Std) || md.ClassNames != nil {
		t.Errorf("preprocess %+v class names %v, want %+v and none", md.Preprocess, md.ClassNames, wantPre)
	}
	if md.Dataset.Name != "idx/t10k" {
		t.Errorf("dataset name %q", md.Dataset.Name)
	}
	cfg, _ := dataset.Config{Crop: 28, Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}.Defaults()
	m := openTeacher(t, "tiny_gray.onnx", 1)
	k := m.Info().NumClasses
	for i, r := range rows {
		x, _ := reference(t, src, i, 0, cfg, dataset.ViewConfig{})
		// 28×28 into a 28×28 teacher: no resampling, just ToTensor and Normalize.
		img, _ := src.Load(i, 1)
		for p, v := range img.Pix {
			if want := (float32(v)/255 - float32(0.286)) / float32(0.353); x[p] != want {
				t.Fatalf("image %d pixel %d: %v, want %v unchanged", i, p, x[p], want)
			}
		}
		want, err := m.Run(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, r.logits, want[:k]); d > 1e-6 {
			t.Errorf("%s: logits differ by %g", r.id, d)
		}
		it := src.Item(i)
		if r.id != it.ID || r.label != int32(it.Label) || r.crop != [4]float32{0, 0, 1, 1} {
			t.Errorf("row %d: %+v, want id %s label %d crop 0,0,1,1", i, r, it.ID, it.Label)
		}
	}
}

// TestRefusals checks that every configuration error is reported before any image is read
// and before the store folder is made.
func TestRefusals(t *testing.T) {
	images := filepath.Join(testdata, "images")
	idx := "idx:" + filepath.Join(testdata, "idx", "t10k")
	folderTree := func(names ...string) string {
		d := t.TempDir()
		img, err := os.ReadFile(filepath.Join(testdata, "images", "png", "rgb_40x30.png"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			os.MkdirAll(filepath.Join(d, n), 0o755)
			os.WriteFile(filepath.Join(d, n, "x.png"), img, 0o644)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		o    precompute.Options
		is   error
		msg  []string
	}{
		{"int64 input", precompute.Options{Model: model("wrong_int64_input.onnx"), Data: images},
			teacher.ErrUnsupportedModel, []string{"int64", "wrong_int64_input.onnx"}},
		{"3-D input", precompute.Options{Model: model("wrong_3d_input.onnx"), Data: images},
			teacher.ErrUnsupportedModel, []string{"wrong_3d_input.onnx", "float32 ["}},
		{"two inputs", precompute.Options{Model: model("wrong_two_inputs.onnx"), Data: images},
			teacher.ErrUnsupportedModel, []string{"wrong_two_inputs.onnx"}},
		{"mean for 3 channels into a grey model", precompute.Options{Model: model("tiny_gray.onnx"), Data: idx, Mean: []float64{0.5, 0.5, 0.5}},
			precompute.ErrPreprocess, []string{"mean has 3 values", "1 channels"}},
		{"crop not the input side", precompute.Options{Model: model("tiny_regnet.onnx"), Data: images, Crop: 30, ClassMapFile: "x"},
			precompute.ErrPreprocess, []string{"crop 30", "32×32"}},
		{"class names in another order", precompute.Options{Model: model("tiny_regnet.onnx"), Data: images},
			precompute.ErrClasses, []string{`class 0 is "jpeg" in the dataset but "a_class" in the teacher`, "give a class map"}},
		{"one class differs", precompute.Options{Model: model("tiny_regnet.onnx"), Data: folderTree("a_class", "b_class", "c_klass", "d_class", "e_class")},
			precompute.ErrClasses, []string{`class 2 is "c_klass" in the dataset but "c_class"`}},
		{"fewer dataset classes", precompute.Options{Model: model("tiny_regnet.onnx"), Data: folderTree("a_class", "b_class")},
			precompute.ErrClasses, []string{"the dataset has 2 classes, the teacher 5"}},
		{"class map misses a folder", precompute.Options{Model: model("tiny_regnet.onnx"), Data: images,
			ClassMapFile: writeFile(t, "m", "jpeg\t0\npng\t1\n")}, precompute.ErrClasses, []string{`"other" is not mapped`}},
		{"class map names no teacher class", precompute.Options{Model: model("tiny_regnet.onnx"), Data: images,
			ClassMapFile: writeFile(t, "m", "jpeg\t0\nother\tz_class\npng\t1\n")}, precompute.ErrClasses, []string{`"z_class" is neither`}},
		{"class names of the wrong count", precompute.Options{Model: model("tiny_gray.onnx"), Data: idx,
			ClassNamesFile: writeFile(t, "names", "a\nb\nc\n")}, precompute.ErrClasses, []string{"3 class names, the model 10 classes"}},
		{"labels beyond K", precompute.Options{Model: model("tiny_regnet.onnx"), Data: "list:" + writeFile(t, "list.txt", "x.png\t7\n")},
			precompute.ErrClasses, []string{"x.png has label 7", "5 classes"}},
		{"topk beyond K", precompute.Options{Model: model("tiny_gray.onnx"), Data: idx, StoreMode: schema.ModeTopK, TopK: 11},
			precompute.ErrOptions, []string{"topk 11", "10 classes"}},
		{"bad option", precompute.Options{Model: model("tiny_gray.onnx"), Data: idx, OnError: "ignore"},
			precompute.ErrOptions, []string{"on-error"}},
		{"extensions of IDX files", precompute.Options{Model: model("tiny_gray.onnx"), Data: idx, Extensions: []string{".gif"}},
			precompute.ErrOptions, []string{"extensions apply to a folder"}},
		{"bad extensions", precompute.Options{Model: model("tiny_regnet.onnx"), Data: images, Extensions: []string{".png", ""}},
			dataset.ErrExtensions, []string{"empty ending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Out = filepath.Join(t.TempDir(), "labels")
			tc.o.Threads, tc.o.Workers = 1, 1
			job, err := precompute.New(tc.o)
			if err == nil {
				job.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			for _, s := range tc.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, serr := os.Stat(tc.o.Out); serr == nil {
				t.Errorf("store folder %s was made", tc.o.Out)
			}
			t.Log(err)
		})
	}
}

// TestResume stops a run at a limit, checks that a rerun with other preprocessing is refused
// naming the key, then completes the store and compares it with an uninterrupted run's.
func TestResume(t *testing.T) {
	base := precompute.Options{Model: model("tiny_regnet.onnx"), Data: filepath.Join(testdata, "images"),
		ClassMapFile: imagesClassMap(t), Workers: 2, Threads: 1, Views: 2, Seed: 9, ShardRows: 4, Batch: 3}
	whole := base
	whole.Out = filepath.Join(t.TempDir(), "whole")
	runJob(t, whole)
	want, _ := readStore(t, whole.Out)

	part := base
	part.Out = filepath.Join(t.TempDir(), "part")
	part.Limit = 7
	if s := runJob(t, part); s.Done != 7 || s.BeyondLimit != int64(len(want)/2-7) {
		t.Fatalf("limited run: done %d, beyond limit %d", s.Done, s.BeyondLimit)
	}
	other := part
	other.Limit, other.Resize = 0, 40
	if _, err := precompute.New(other); !errors.Is(err, schema.ErrMismatch) || !strings.Contains(err.Error(), "deitkd.preprocess.resize") {
		t.Fatalf("rerun with --resize 40: %v, want a mismatch naming deitkd.preprocess.resize", err)
	}
	// Other extensions list other files (here the GIFs too): refused before their ids are
	// compared, naming the listing, and saying what the store's "null" is.
	other = part
	other.Limit, other.Extensions = 0, []string{".gif", ".jpg", ".jpeg", ".png", ".webp"}
	_, err := precompute.New(other)
	if !errors.Is(err, schema.ErrMismatch) || !strings.Contains(err.Error(), `deitkd.dataset.extensions: store has null, run wants [".gif",`) ||
		!strings.Contains(err.Error(), "IMG_EXTENSIONS") {
		t.Fatalf("rerun with --extensions: %v, want a mismatch naming deitkd.dataset.extensions", err)
	}
	t.Log(err)
	rest := part
	rest.Limit = 0
	s := runJob(t, rest)
	if s.Present != 7 || s.Done != int64(len(want)/2-7) {
		t.Fatalf("resumed run: present %d done %d", s.Present, s.Done)
	}
	got, _ := readStore(t, rest.Out)
	compareRows(t, got, want)
}

// compareRows checks two stores row for row: same rows in the same order, logits within 1e-6.
func compareRows(t testing.TB, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	seen := map[[2]int64]bool{}
	for i := range want {
		g, w := got[i], want[i]
		key := [2]int64{g.index, int64(g.view)}
		if seen[key] {
			t.Fatalf("image %d view %d stored twice", g.index, g.view)
		}
		seen[key] = true
		if g.id != w.id || g.index != w.index || g.view != w.view || g.label != w.label || g.crop != w.crop || g.flip != w.flip || g.hard != w.hard {
			t.Fatalf("row %d: %+v, want %+v", i, g, w)
		}
		if d := maxAbsDiff(t, g.logits, w.logits); d > 1e-6 {
			t.Fatalf("row %d (%s view %d): logits differ by %g", i, g.id, g.view, d)
		}
	}
}

// TestCancel cancels a run after its first batch: Run reports ErrInterrupted, the store holds
// whole images only, and a rerun completes it to equal an uninterrupted run.
func TestCancel(t *testing.T) {
	base := precompute.Options{Model: model("tiny_regnet.onnx"), Data: filepath.Join(testdata, "images"),
		ClassMapFile: imagesClassMap(t), Workers: 2, Threads: 1, Views: 3, ShardRows: 3, Batch: 3}
	whole := base
	whole.Out = filepath.Join(t.TempDir(), "whole")
	runJob(t, whole)
	want, _ := readStore(t, whole.Out)

	cut := base
	cut.Out = filepath.Join(t.TempDir(), "cut")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cut.Progress = func(p precompute.Progress) {
		if p.Done >= 2 {
			cancel()
		}
	}
	job, err := precompute.New(cut)
	if err != nil {
		t.Fatal(err)
	}
	s, err := job.Run(ctx)
	job.Close()
	if !errors.Is(err, precompute.ErrInterrupted) {
		t.Fatalf("Run after cancel: %v, want ErrInterrupted", err)
	}
	if s.Done < 2 || s.Done >= int64(len(want)/3) {
		t.Fatalf("cancelled run labelled %d images", s.Done)
	}
	got, _ := readStore(t, cut.Out)
	if len(got) != int(s.Rows) || len(got)%3 != 0 {
		t.Fatalf("store holds %d rows after the cancelled run wrote %d (3 views per image)", len(got), s.Rows)
	}
	compareRows(t, got, want[:len(got)])
	rest := base
	rest.Out = cut.Out
	if s2 := runJob(t, rest); s2.Present != s.Done {
		t.Fatalf("rerun found %d images present, the cancelled run stored %d", s2.Present, s.Done)
	}
	got, _ = readStore(t, cut.Out)
	compareRows(t, got, want)
}

// TestShards splits a store between two writers and checks they cover the dataset once.
func TestShards(t *testing.T) {
	out := filepath.Join(t.TempDir(), "labels")
	var all []row
	for i := range 2 {
		o := precompute.Options{Model: model("tiny_gray.onnx"), Data: "idx:" + filepath.Join(testdata, "idx", "train"),
			Out: out, Shard: store.ShardSpec{Index: i, Count: 2}, Workers: 1, Threads: 1}
		s := runJob(t, o)
		if s.OtherShards == 0 || s.Done == 0 {
			t.Fatalf("writer %d: done %d, other shards' %d", i, s.Done, s.OtherShards)
		}
		rows, _ := readStore(t, filepath.Join(out, "manifest."+store.ShardSpec{Index: i, Count: 2}.String()+".json"))
		for _, r := range rows {
			if r.index%2 != int64(i) {
				t.Fatalf("writer %d stored image %d", i, r.index)
			}
		}
		all = append(all, rows...)
	}
	src, _ := dataset.Open("idx:" + filepath.Join(testdata, "idx", "train"))
	seen := map[int64]bool{}
	for _, r := range all {
		seen[r.index] = true
	}
	if len(all) != src.Len() || len(seen) != src.Len() {
		t.Fatalf("%d rows for %d distinct images, dataset has %d", len(all), len(seen), src.Len())
	}
}
