package dataset

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestResampleCMatchesGo: the C passes give the Go passes' output (itself PIL's, by the
// torchvision tests) on random images, sizes, views, filters and channel counts, shrinking and
// enlarging.
func TestResampleCMatchesGo(t *testing.T) {
	if !haveCResample {
		t.Skip("built without cgo")
	}
	defer func() { useC = haveCResample }()
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		ch := []int{1, 3}[r.IntN(2)]
		w, h := 1+r.IntN(400), 1+r.IntN(400)
		img := NewImage(w, h, ch)
		for i := range img.Pix {
			img.Pix[i] = uint8(r.IntN(256))
		}
		crop := 1 + r.IntN(256)
		cfg := Config{Crop: crop, Resize: crop + r.IntN(64), Channels: ch, Interpolation: []string{"bilinear", "bicubic"}[r.IntN(2)]}
		size := []int{crop, 1 + r.IntN(300)}[r.IntN(2)]
		v, err := ViewFor(w, h, trial, r.IntN(3), cfg, ViewConfig{Seed: uint64(trial)})
		if err != nil {
			t.Fatal(err)
		}
		got, want := make([]float32, TensorLen(ch, size)), make([]float32, TensorLen(ch, size))
		useC = true
		if err := Render(got, img, v, size, cfg); err != nil {
			t.Fatal(err)
		}
		useC = false
		if err := Render(want, img, v, size, cfg); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: %dx%dx%d, view %+v, size %d, %+v: C and Go passes differ", trial, w, h, ch, v, size, cfg)
		}
	}
}
