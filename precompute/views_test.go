package precompute_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
)

// TestViews stores 4 views per image and checks every row's box and flip against dataset's
// pure functions of (seed, index, view), then regenerates random rows' pixels from those
// three numbers alone and gets the stored teacher logits back.
func TestViews(t *testing.T) {
	const views, seed = 4, 20260401
	data := filepath.Join(testdata, "images")
	out := filepath.Join(t.TempDir(), "labels")
	o := precompute.Options{Model: model("tiny_regnet.onnx"), Data: data, Out: out, ClassMapFile: imagesClassMap(t),
		Views: views, Seed: seed, Scale: [2]float64{0.25, 1}, FlipP: 0.5, Workers: 2, Threads: 1, Batch: 10}
	runJob(t, o)
	rows, md := readStore(t, out)
	src, err := dataset.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != views*src.Len() {
		t.Fatalf("%d rows for %d images × %d views", len(rows), src.Len(), views)
	}
	if md.Views.Count != views || md.Views.Seed != seed || md.Views.Scale != [2]float64{0.25, 1} ||
		md.Views.Ratio != [2]float64{3.0 / 4, 4.0 / 3} || md.Views.FlipP != 0.5 {
		t.Errorf("views metadata %+v", md.Views)
	}
	cfg := imagesConfig(t)
	vc := dataset.ViewConfig{Seed: seed, Scale: [2]float64{0.25, 1}, FlipP: 0.5}
	flips := 0
	for n, r := range rows {
		i, v := n/views, n%views
		if r.index != int64(i) || r.view != int32(v) {
			t.Fatalf("row %d is image %d view %d, want image %d view %d", n, r.index, r.view, i, v)
		}
		img, err := src.Load(i, 3)
		if err != nil {
			t.Fatal(err)
		}
		want, err := dataset.ViewFor(img.Width, img.Height, i, v, cfg, vc)
		if err != nil {
			t.Fatal(err)
		}
		if v == 0 {
			c, _ := dataset.CenterBox(img.Width, img.Height, cfg)
			if want.Box != c || want.Flip {
				t.Fatalf("view 0 of %s is %+v, want the centre box %+v", r.id, want, c)
			}
		}
		if r.crop != [4]float32{want.Box.Top, want.Box.Left, want.Box.Height, want.Box.Width} || r.flip != want.Flip {
			t.Errorf("%s view %d: crop %v flip %v, want %+v", r.id, v, r.crop, r.flip, want)
		}
		if r.flip {
			flips++
		}
	}
	if flips == 0 || flips == len(rows)-src.Len() {
		t.Errorf("%d of %d random views flipped at p = 0.5", flips, len(rows)-src.Len())
	}

	// Regenerate random rows from (seed, image_index, view) and run the teacher on them alone.
	m := openTeacher(t, "tiny_regnet.onnx", 1)
	k := m.Info().NumClasses
	rng := rand.New(rand.NewPCG(1, 2))
	for range 12 {
		r := rows[rng.IntN(len(rows))]
		x, view := reference(t, src, int(r.index), int(r.view), cfg, vc)
		if r.crop != [4]float32{view.Box.Top, view.Box.Left, view.Box.Height, view.Box.Width} {
			t.Fatalf("%s view %d: regenerated box %+v, stored %v", r.id, r.view, view.Box, r.crop)
		}
		logits, err := m.Run(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, r.logits, logits[:k]); d > 1e-5 {
			t.Errorf("%s view %d: regenerated logits differ from the stored ones by %g", r.id, r.view, d)
		}
	}
}
