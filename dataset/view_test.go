package dataset

import (
	"errors"
	"math"
	"testing"
)

func TestRandomViewDeterministic(t *testing.T) {
	vc := ViewConfig{Seed: 42}
	a, err := RandomView(500, 375, 17, 3, vc)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, _ := RandomView(500, 375, 17, 3, vc)
		if a != b {
			t.Fatalf("same (seed, index, view), different views: %+v, %+v", a, b)
		}
	}
	// Any change of the triple gives another box.
	others := []struct {
		name             string
		seed             uint64
		index, viewIndex int
	}{
		{"seed", 43, 17, 3},
		{"index", 42, 18, 3},
		{"view", 42, 17, 4},
		{"swapped", 42, 3, 17},
	}
	for _, o := range others {
		t.Run(o.name, func(t *testing.T) {
			b, err := RandomView(500, 375, o.index, o.viewIndex, ViewConfig{Seed: o.seed})
			if err != nil {
				t.Fatal(err)
			}
			if a.Box == b.Box {
				t.Fatalf("%+v and %+v share box %+v", a, b, a.Box)
			}
		})
	}
	// Over many rows boxes are nearly all distinct (500×375 has millions of possible boxes).
	seen := map[Box]bool{}
	for i := range 200 {
		for v := 1; v < 8; v++ {
			b, _ := RandomView(500, 375, i, v, vc)
			seen[b.Box] = true
		}
	}
	if len(seen) < 1390 {
		t.Fatalf("only %d distinct boxes in 1400 views", len(seen))
	}
}

// TestRandomViewDistribution: boxes lie in the image, their areas and aspect ratios in the
// configured ranges (up to whole-pixel rounding), flips at the configured rate.
func TestRandomViewDistribution(t *testing.T) {
	tests := []struct {
		name  string
		w, h  int
		vc    ViewConfig
		flipP float64
	}{
		{"defaults", 500, 375, ViewConfig{Seed: 1}, 0.5},
		{"mnist", 28, 28, ViewConfig{Seed: 2, Scale: [2]float64{0.35, 1}, FlipP: 0.25}, 0.25},
		{"never flip", 64, 48, ViewConfig{Seed: 3, FlipP: -1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vc, _ := tt.vc.Defaults()
			flips := 0
			const n = 4000
			for i := range n {
				v, err := RandomView(tt.w, tt.h, i, 1+i%5, tt.vc)
				if err != nil {
					t.Fatal(err)
				}
				top, left, h, w := pixelRect(v.Box, tt.w, tt.h)
				if PixelBox(tt.w, tt.h, top, left, h, w) != v.Box {
					t.Fatalf("box %+v is not whole pixels", v.Box)
				}
				if top+h > tt.h || left+w > tt.w || h < 1 || w < 1 {
					t.Fatalf("box %d,%d %dx%d outside %dx%d", top, left, w, h, tt.w, tt.h)
				}
				area := float64(w*h) / float64(tt.w*tt.h)
				// Rounding each side to whole pixels moves the area by up to about a pixel a side.
				slack := float64(w+h+1) / float64(tt.w*tt.h)
				if area < vc.Scale[0]-slack || area > vc.Scale[1]+slack {
					t.Fatalf("area fraction %.4f outside %v", area, vc.Scale)
				}
				if v.Flip {
					flips++
				}
			}
			rate := float64(flips) / n
			if math.Abs(rate-tt.flipP) > 0.03 {
				t.Fatalf("flip rate %.3f, want %.2f", rate, tt.flipP)
			}
		})
	}
}

// TestRandomViewFallback: when no try fits, get_params' fallback: the centre crop with the
// aspect ratio clamped into the range.
func TestRandomViewFallback(t *testing.T) {
	// A 1000×10 strip: a box of area ≥ 90% needs ratio ≥ 90, far outside (3/4, 4/3).
	v, err := RandomView(1000, 10, 0, 1, ViewConfig{Scale: [2]float64{0.9, 1}})
	if err != nil {
		t.Fatal(err)
	}
	top, left, h, w := pixelRect(v.Box, 1000, 10)
	// w = round(10 · 4/3) = 13, centred: left = (1000-13)//2 = 493.
	if top != 0 || h != 10 || w != 13 || left != 493 {
		t.Fatalf("fallback box top %d left %d %dx%d", top, left, w, h)
	}
}

func TestViewForCentre(t *testing.T) {
	cfg := Config{Resize: 256, Crop: 224}
	v, err := ViewFor(500, 375, 9, 0, cfg, ViewConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// 500×375 → 341×256; crop offsets round((341-224)/2) = 58 (58.5 rounds half to even)
	// and 16.
	want := Box{Top: 16.0 / 256, Left: 58.0 / 341, Height: 224.0 / 256, Width: 224.0 / 341}
	if v.Index != 0 || v.Flip || v.Box != want {
		t.Fatalf("centre view %+v, want box %+v", v, want)
	}
	// A Crop×Crop image with no resize: the whole image.
	v, _ = ViewFor(28, 28, 0, 0, Config{Crop: 28, Channels: 1}, ViewConfig{})
	if v.Box != (Box{0, 0, 1, 1}) {
		t.Fatalf("28×28 into 28: box %+v", v.Box)
	}
}

func TestRatioRecovers(t *testing.T) {
	for q := int64(1); q <= 4096; q += 7 {
		for _, p := range []int64{0, 1, q / 3, q / 2, q - 1, q} {
			if p < 0 || p > q {
				continue
			}
			f := float32(float64(p) / float64(q))
			a, b, ok := ratio(f)
			if !ok || a*q != p*b {
				t.Fatalf("ratio(float32(%d/%d)) = %d/%d, %v", p, q, a, b, ok)
			}
		}
	}
}

// TestRenderIdentity: a 28×28 image into a 28×28 view is passed through untouched.
func TestRenderIdentity(t *testing.T) {
	img := NewImage(28, 28, 1)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	cfg := Config{Crop: 28, Channels: 1, Mean: []float64{0}, Std: []float64{1}}
	got := make([]float32, TensorLen(1, 28))
	v, _ := ViewFor(28, 28, 0, 0, cfg, ViewConfig{})
	for _, interp := range []string{"bilinear", "bicubic"} {
		cfg.Interpolation = interp
		if err := Render(got, img, v, 28, cfg); err != nil {
			t.Fatal(err)
		}
		for i, p := range img.Pix {
			if got[i] != float32(p)/255 {
				t.Fatalf("%s: sample %d = %v, want %v/255", interp, i, got[i], p)
			}
		}
	}
}

// TestRenderFlipAndSize: a flipped view is the mirror image; a view renders at any size (the
// student's resolution).
func TestRenderFlipAndSize(t *testing.T) {
	img := loadTestImage(t, "png/rgb_40x30.png", 3)
	cfg := Config{Crop: 32}
	v, err := RandomView(img.Width, img.Height, 5, 2, ViewConfig{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{32, 16, 7} {
		v.Flip = false
		plain := make([]float32, TensorLen(3, size))
		if err := Render(plain, img, v, size, cfg); err != nil {
			t.Fatal(err)
		}
		v.Flip = true
		flipped := make([]float32, len(plain))
		if err := Render(flipped, img, v, size, cfg); err != nil {
			t.Fatal(err)
		}
		for c := range 3 {
			for y := range size {
				for x := range size {
					a := plain[(c*size+y)*size+x]
					b := flipped[(c*size+y)*size+size-1-x]
					if a != b {
						t.Fatalf("size %d: (%d,%d,%d) %v, mirrored %v", size, c, y, x, a, b)
					}
				}
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"channels", Config{Channels: 2}},
		{"resize below crop", Config{Resize: 20, Crop: 32}},
		{"interpolation", Config{Interpolation: "lanczos"}},
		{"mean length", Config{Mean: []float64{0.1, 0.2}, Std: []float64{1}}},
		{"zero std", Config{Mean: []float64{0}, Std: []float64{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.Defaults(); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Defaults() err = %v", err)
			}
		})
	}
	img := NewImage(10, 10, 3)
	if err := Preprocess(make([]float32, 5), img, Config{Crop: 8}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("short dst: %v", err)
	}
	if err := Preprocess(make([]float32, 64), img, Config{Crop: 8, Channels: 1}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("channel mismatch: %v", err)
	}
	if _, err := RandomView(10, 10, 0, 0, ViewConfig{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("random view 0: %v", err)
	}
	if _, err := (ViewConfig{Scale: [2]float64{0.5, 0.1}}).Defaults(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("scale range: %v", err)
	}
}

// TestRenderPixels: Render's output is RenderPixels' 8-bit pixels through ToTensor and
// Normalize, value for value, for the centre view and random views with and without a flip, in
// colour and in grey.
func TestRenderPixels(t *testing.T) {
	for _, tc := range []struct {
		file     string
		channels int
		cfg      Config
	}{
		{"png/rgb_40x30.png", 3, Config{Crop: 24, Interpolation: "bicubic", Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}},
		{"png/gray_33x45.png", 1, Config{Crop: 17, Channels: 1, Mean: []float64{0.286}, Std: []float64{0.353}}},
	} {
		img := loadTestImage(t, tc.file, tc.channels)
		cfg, err := tc.cfg.Defaults()
		if err != nil {
			t.Fatal(err)
		}
		c := tc.channels
		for view := range 4 {
			v, err := ViewFor(img.Width, img.Height, 3, view, cfg, ViewConfig{Seed: 11, FlipP: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			for _, flip := range []bool{false, true} {
				v.Flip = flip
				size := cfg.Crop
				want := make([]float32, TensorLen(c, size))
				if err := Render(want, img, v, size, cfg); err != nil {
					t.Fatal(err)
				}
				m, err := RenderPixels(img, v, size, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if m.Width != size || m.Height != size || m.Channels != c {
					t.Fatalf("%s view %d: a %d×%d×%d image", tc.file, view, m.Width, m.Height, m.Channels)
				}
				for ch := range c {
					for i := range size * size {
						p := m.Pix[i*c+ch]
						if got := (float32(p)/255 - float32(cfg.Mean[ch])) / float32(cfg.Std[ch]); got != want[ch*size*size+i] {
							t.Fatalf("%s view %d flip %v: channel %d sample %d: pixel %d normalises to %v, Render gives %v",
								tc.file, view, flip, ch, i, p, got, want[ch*size*size+i])
						}
					}
				}
			}
		}
	}
}
