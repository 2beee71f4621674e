package precompute_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/teacher"
)

// checkRelabelled checks that the store at out holds exactly the rows (image, view, crop, flip)
// of the store at from, in the same order, that its metadata takes the views from it and names
// it, and that each row's logits are those of teacherFile run afresh on the row's box and flip
// rendered with cfg.
func checkRelabelled(t *testing.T, from, out, data, teacherFile string, cfg dataset.Config) []row {
	t.Helper()
	srcRows, srcMeta := readStore(t, from)
	rows, md := readStore(t, out)
	if len(rows) != len(srcRows) {
		t.Fatalf("%d rows, the source store %d", len(rows), len(srcRows))
	}
	for i, r := range rows {
		s := srcRows[i]
		if r.id != s.id || r.index != s.index || r.view != s.view || r.crop != s.crop || r.flip != s.flip || r.label != s.label {
			t.Fatalf("row %d: %s view %d crop %v flip %v, the source's %s view %d crop %v flip %v",
				i, r.id, r.view, r.crop, r.flip, s.id, s.view, s.crop, s.flip)
		}
	}
	if md.Views != srcMeta.Views {
		t.Errorf("views %+v, the source's %+v", md.Views, srcMeta.Views)
	}
	man, err := os.ReadFile(filepath.Join(from, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(man)
	abs, _ := filepath.Abs(from)
	if want := (schema.ViewsFrom{Path: abs, ManifestSHA256: hex.EncodeToString(sum[:])}); md.ViewsFrom == nil || *md.ViewsFrom != want {
		t.Errorf("%s = %+v, want %+v", schema.KeyViewsFrom, md.ViewsFrom, want)
	}
	if srcMeta.ViewsFrom != nil {
		t.Errorf("the source store has %s", schema.KeyViewsFrom)
	}
	src, err := dataset.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := teacher.Open(teacherFile, teacher.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	k := m.Info().NumClasses
	flips, random := 0, 0
	for _, r := range rows {
		img, err := src.Load(int(r.index), cfg.Channels)
		if err != nil {
			t.Fatal(err)
		}
		view := dataset.View{Index: int(r.view), Flip: r.flip, Box: dataset.Box{Top: r.crop[0], Left: r.crop[1], Height: r.crop[2], Width: r.crop[3]}}
		x := make([]float32, dataset.TensorLen(cfg.Channels, cfg.Crop))
		if err := dataset.Render(x, img, view, cfg.Crop, cfg); err != nil {
			t.Fatal(err)
		}
		want, err := m.Run(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, r.logits, want[:k]); d > 1e-5 {
			t.Errorf("%s view %d: logits differ from a fresh run of %s on its box by %g", r.id, r.view, filepath.Base(teacherFile), d)
		}
		if r.view > 0 {
			random++
			if r.flip {
				flips++
			}
		}
	}
	if random == 0 || flips == 0 || flips == random {
		t.Errorf("%d random views, %d flipped: the test shows nothing of flips", random, flips)
	}
	return rows
}

// TestViewsFrom labels the IDX training images with tiny_gray at 3 views, then the same rows
// with another teacher (the ViT demo teacher) by ViewsFrom: the same rows, the other
// teacher's logits.
func TestViewsFrom(t *testing.T) {
	spec := "idx:" + filepath.Join(testdata, "idx", "train")
	dir := t.TempDir()
	first := filepath.Join(dir, "gray")
	runJob(t, precompute.Options{Model: model("tiny_gray.onnx"), Data: spec, Out: first, Mean: []float64{0.286}, Std: []float64{0.353},
		Views: 3, Seed: 19, Scale: [2]float64{0.35, 1}, Workers: 1, Threads: 1})
	vit := filepath.Join(testdata, "teacher", "vit_fmnist.onnx")
	out := filepath.Join(dir, "vit")
	o := precompute.Options{Model: vit, Data: spec, Out: out, ViewsFrom: first, Workers: 2, Threads: 1, Batch: 4}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := job.Preprocess()
	job.Close()
	sum := runJob(t, o)
	if sum.Done != 5 || sum.NotInSource != 0 || sum.Rows != 15 {
		t.Errorf("summary %+v, want 5 images, 15 rows", sum)
	}
	rows := checkRelabelled(t, first, out, spec, vit, cfg)
	gray, _ := readStore(t, first)
	same := 0
	for i := range rows {
		if maxAbsDiff(t, rows[i].logits, gray[i].logits) == 0 {
			same++
		}
	}
	if same != 0 {
		t.Errorf("%d rows with tiny_gray's logits: not the other teacher's", same)
	}
	// The same command again resumes: nothing to do, nothing refused.
	if sum := runJob(t, o); sum.Done != 0 || sum.Present != 5 {
		t.Errorf("rerun: %+v", sum)
	}
}

// TestViewsFromOtherSize labels the folder images with tiny_regnet (3×32×32) at 3 views, then
// the same rows at another input size and channel count with tiny_gray (1×28×28); a source
// store made with --limit lends only its images.
func TestViewsFromOtherSize(t *testing.T) {
	data := filepath.Join(testdata, "images")
	dir := t.TempDir()
	first := filepath.Join(dir, "regnet")
	runJob(t, precompute.Options{Model: model("tiny_regnet.onnx"), Data: data, Out: first, ClassMapFile: imagesClassMap(t),
		Views: 3, Seed: 5, Scale: [2]float64{0.25, 1}, Workers: 2, Threads: 1, Batch: 8})
	out := filepath.Join(dir, "gray")
	var warnings []string
	o := precompute.Options{Model: model("tiny_gray.onnx"), Data: data, Out: out, ViewsFrom: first, Mean: []float64{0.5}, Std: []float64{0.5},
		Workers: 2, Threads: 1, Batch: 7, Warn: func(s string) { warnings = append(warnings, s) }}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := job.Preprocess()
	job.Close()
	runJob(t, o)
	_, srcMeta := readStore(t, first)
	if cfg.Crop != 28 || srcMeta.Preprocess.Crop != 32 {
		t.Fatalf("crops %d and %d, want 28 and the source's 32", cfg.Crop, srcMeta.Preprocess.Crop)
	}
	checkRelabelled(t, first, out, data, model("tiny_gray.onnx"), cfg)
	ratioWarned := strings.Contains(strings.Join(warnings, "\n"), "view 0 keeps the store's box")
	if p := srcMeta.Preprocess; (p.Resize*28 != 28*p.Crop) != ratioWarned {
		t.Errorf("source resize %d crop %d, this run 28 of 28: warnings %q", p.Resize, p.Crop, warnings)
	}

	limited := filepath.Join(dir, "regnet-limit")
	runJob(t, precompute.Options{Model: model("tiny_regnet.onnx"), Data: data, Out: limited, ClassMapFile: imagesClassMap(t),
		Views: 2, Seed: 5, Limit: 3, Workers: 1, Threads: 1})
	o.ViewsFrom, o.Out = limited, filepath.Join(dir, "gray-limit")
	sum := runJob(t, o)
	src, _ := dataset.Open(data)
	if sum.Done != 3 || sum.NotInSource != int64(src.Len()-3) || sum.Rows != 6 {
		t.Errorf("from a store of 3 images: %+v", sum)
	}
	checkRelabelled(t, limited, o.Out, data, model("tiny_gray.onnx"), cfg)
}

// TestViewsFromRefusals: view flags alongside ViewsFrom, a source store of another data set,
// and one made with another EXIF setting are refused before a row is written.
func TestViewsFromRefusals(t *testing.T) {
	dir := t.TempDir()
	train := "idx:" + filepath.Join(testdata, "idx", "train")
	first := filepath.Join(dir, "train")
	runJob(t, precompute.Options{Model: model("tiny_gray.onnx"), Data: train, Out: first, Mean: []float64{0.3}, Std: []float64{0.3},
		Views: 2, Workers: 1, Threads: 1})
	images := filepath.Join(dir, "images")
	runJob(t, precompute.Options{Model: model("tiny_regnet.onnx"), Data: filepath.Join(testdata, "images"), Out: images,
		ClassMapFile: imagesClassMap(t), Workers: 1, Threads: 1})
	base := precompute.Options{Model: model("tiny_gray.onnx"), Data: train, Mean: []float64{0.3}, Std: []float64{0.3}, Workers: 1, Threads: 1}
	for _, tc := range []struct {
		name string
		edit func(o *precompute.Options)
		is   error
		want string
	}{
		{"views given", func(o *precompute.Options) { o.ViewsFrom, o.Views = first, 2 }, precompute.ErrOptions, "come from the views-from store"},
		{"seed given", func(o *precompute.Options) { o.ViewsFrom, o.Seed = first, 1 }, precompute.ErrOptions, "come from the views-from store"},
		{"other data set", func(o *precompute.Options) {
			o.ViewsFrom, o.Data = first, "idx:"+filepath.Join(testdata, "idx", "t10k")
		}, precompute.ErrViewsFrom, "deitkd.dataset."},
		{"other data set, same count", func(o *precompute.Options) {
			o.ViewsFrom, o.Data, o.Model, o.Mean, o.Std = images, filepath.Join(testdata, "images"), model("tiny_regnet.onnx"), nil, nil
			o.ClassMapFile, o.Extensions = imagesClassMap(t), []string{dataset.AllFiles}
		}, precompute.ErrViewsFrom, "deitkd.dataset."},
		{"other exif transpose", func(o *precompute.Options) { o.ViewsFrom, o.EXIFTranspose = first, true }, precompute.ErrViewsFrom, "deitkd.preprocess.exif_transpose"},
		{"no store", func(o *precompute.Options) { o.ViewsFrom = filepath.Join(dir, "none") }, nil, "views-from store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out = filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			tc.edit(&o)
			job, err := precompute.New(o)
			if err == nil {
				job.Close()
				t.Fatal("accepted")
			}
			if (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v naming %q", err, tc.is, tc.want)
			}
			if _, err := os.Stat(o.Out); !os.IsNotExist(err) {
				t.Errorf("the store folder was made: %v", err)
			}
		})
	}
}

// TestRegNetAt56 runs the bundled RegNet at 56 pixels (regnety_fmnist_56.onnx, the 28-pixel
// file fine-tuned at 56 by teacher/export/finetune_regnet_size.py) on the views of a 28-pixel store of the
// Fashion-MNIST subset: ONNX Runtime takes the larger input, the rows are the source's, and the
// logits those of the 56-pixel teacher on the same boxes.
func TestRegNetAt56(t *testing.T) {
	data := "idx:" + filepath.Join(testdata, "fmnist", "t10k")
	dir := t.TempDir()
	first := filepath.Join(dir, "s28")
	runJob(t, precompute.Options{Model: filepath.Join(testdata, "teacher", "regnety_fmnist.onnx"), Data: data, Out: first,
		Views: 2, Scale: [2]float64{0.35, 1}, Limit: 48, Workers: 2, Threads: 2})
	big := filepath.Join(testdata, "teacher", "regnety_fmnist_56.onnx")
	o := precompute.Options{Model: big, Data: data, Out: filepath.Join(dir, "s56"), ViewsFrom: first, Workers: 2, Threads: 2}
	job, err := precompute.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := job.Preprocess()
	job.Close()
	if cfg.Crop != 56 {
		t.Fatalf("the 56-pixel teacher's crop %d: want 56", cfg.Crop)
	}
	sum := runJob(t, o)
	if sum.Done != 48 || sum.NotInSource != 552 {
		t.Errorf("summary %+v: want the source's 48 images", sum)
	}
	checkRelabelled(t, first, o.Out, data, big, cfg)
	t.Logf("view-0 top-1 at 56 px: %d/%d", sum.Correct, sum.Labelled)
}
