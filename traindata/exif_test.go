package traindata_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/precompute"
	"github.com/deitkd/deitkd/traindata"
)

// TestEXIFTransposeFromStore: a store made with --exif-transpose has train decode its images
// upright too: the eval view of an orientation-6 JPEG is that of the transposed image, and
// without it that of the image as stored.
func TestEXIFTransposeFromStore(t *testing.T) {
	data := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "dataset", "testdata", "exif", "orient-6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a", "photo.jpg"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, on := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "labels")
		job, err := precompute.New(precompute.Options{Model: filepath.Join(testdata, "models", "tiny_gray.onnx"), Data: data, Out: dir,
			Mean: fmMean, Std: fmStd, Workers: 1, Threads: 1, EXIFTranspose: on})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := job.Run(ctx); err != nil {
			t.Fatal(err)
		}
		job.Close()
		s, err := traindata.Open(ctx, traindata.Options{Labels: dir, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		p := s.Meta().Preprocess
		if p.EXIFTranspose != on {
			t.Fatalf("exif_transpose %v recorded, want %v", p.EXIFTranspose, on)
		}
		cfg, err := p.Defaults()
		if err != nil {
			t.Fatal(err)
		}
		m, err := dataset.Decode(b, cfg.Channels)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			m = dataset.Transpose(m, m.Orientation)
		}
		v, err := dataset.ViewFor(m.Width, m.Height, 0, 0, cfg, dataset.ViewConfig{})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, cfg.Channels*cfg.Crop*cfg.Crop)
		if err := dataset.Render(want, m, v, cfg.Crop, cfg); err != nil {
			t.Fatal(err)
		}
		got := collect(t, s, -1)
		if len(got) != 1 || !slices.Equal(got[0].Images, want) {
			t.Fatalf("exif_transpose %v: the eval view is not that of the image as precompute decoded it", on)
		}
	}
}
