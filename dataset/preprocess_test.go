package dataset

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadTestImage(t testing.TB, id string, channels int) *Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "images", filepath.FromSlash(id)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data, channels)
	if err != nil {
		t.Fatalf("decode %s: %v", id, err)
	}
	return m
}

// maeLevels is the mean absolute difference of two normalised CHW tensors in 8-bit levels of
// the [0,1] image (Normalize undone: |a-b|·std·255), and the largest such difference.
func maeLevels(a, b []float32, std []float64) (mean, maxd float64) {
	n := len(a) / len(std)
	var sum float64
	for i := range a {
		d := math.Abs(float64(a[i]-b[i])) * float64(std[i/n]) * 255
		sum += d
		maxd = max(maxd, d)
	}
	return sum / float64(len(a)), maxd
}

// refTensor turns a stored ToTensor output (uint8 levels, CHW) into the normalised tensor, with
// the same float32 operations torchvision uses (its bit-exactness is TestNormalizeBitExact's).
func refTensor(e *refEntry, cfg Config) []float32 {
	cfg, _ = cfg.Defaults()
	lut := makeLUT(cfg)
	n := e.Shape[1] * e.Shape[2]
	out := make([]float32, len(e.U8))
	for i, v := range e.U8 {
		out[i] = lut[i/n][v]
	}
	return out
}

// fidelityBound is the bound: mean absolute error at most 1/255 on the [0,1] scale.
const fidelityBound = 1.0

// TestPreprocessMatchesTorchvision: Resize+CenterCrop+ToTensor+Normalize against torchvision
// for every test image at three settings (shrinking and enlarging, bilinear and bicubic, RGB and
// L). The bound is the 1/255 mean absolute error; in fact every value must be equal,
// since decoding and resampling reproduce PIL's integer arithmetic.
func TestPreprocessMatchesTorchvision(t *testing.T) {
	ref := loadReference(t)
	worst := 0.0
	for _, e := range ref.Entries {
		if e.Kind != "eval" {
			continue
		}
		s := ref.Settings[e.Setting]
		t.Run(e.Setting+"/"+e.ID, func(t *testing.T) {
			cfg := s.config()
			img := loadTestImage(t, e.ID, cfg.Channels)
			got := make([]float32, TensorLen(cfg.Channels, cfg.Crop))
			if err := Preprocess(got, img, cfg); err != nil {
				t.Fatal(err)
			}
			mean, maxd := maeLevels(got, refTensor(e, cfg), s.Std)
			worst = max(worst, mean)
			t.Logf("MAE %.4f/255, max %.2f/255", mean, maxd)
			if mean > fidelityBound {
				t.Errorf("MAE %.4f/255 over the 1/255 bound", mean)
			}
			if maxd != 0 {
				t.Errorf("max diff %.3f/255, want bit-exact", maxd)
			}
		})
	}
	t.Logf("worst MAE over all images and settings: %.4f/255", worst)
}

// TestNormalizeBitExact: ToTensor+Normalize give torchvision's float32 values bit for bit.
func TestNormalizeBitExact(t *testing.T) {
	ref := loadReference(t)
	for _, e := range ref.Entries {
		if e.Kind != "eval_normalized" {
			continue
		}
		t.Run(e.Setting+"/"+e.ID, func(t *testing.T) {
			s := ref.Settings[e.Setting]
			cfg := s.config()
			img := loadTestImage(t, e.ID, cfg.Channels)
			got := make([]float32, TensorLen(cfg.Channels, cfg.Crop))
			if err := Preprocess(got, img, cfg); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != e.F32[i] {
					t.Fatalf("value %d: %v, torchvision %v", i, got[i], e.F32[i])
				}
			}
		})
	}
}

// TestRandomCropMatchesTorchvision: Render of whole-pixel boxes against torchvision's
// resized_crop (and hflip) on boxes from RandomResizedCrop.get_params.
func TestRandomCropMatchesTorchvision(t *testing.T) {
	ref := loadReference(t)
	worst := 0.0
	for _, e := range ref.Entries {
		if e.Kind != "crop" {
			continue
		}
		t.Run(e.Setting+"/"+e.ID, func(t *testing.T) {
			cfg := Config{Crop: e.Size, Interpolation: e.Setting, Channels: 3}
			img := loadTestImage(t, e.ID, 3)
			if img.Width != e.Width || img.Height != e.Height {
				t.Fatalf("size %dx%d, PIL %dx%d", img.Width, img.Height, e.Width, e.Height)
			}
			v := View{Index: 1, Box: PixelBox(img.Width, img.Height, e.Box[0], e.Box[1], e.Box[2], e.Box[3]), Flip: e.Flip}
			got := make([]float32, TensorLen(3, e.Size))
			if err := Render(got, img, v, e.Size, cfg); err != nil {
				t.Fatal(err)
			}
			mean, maxd := maeLevels(got, refTensor(e, cfg), ImageNetStd)
			worst = max(worst, mean)
			t.Logf("box %v flip %v: MAE %.4f/255, max %.2f/255", e.Box, e.Flip, mean, maxd)
			if mean > fidelityBound {
				t.Errorf("MAE %.4f/255 over the 1/255 bound", mean)
			}
			if maxd != 0 {
				t.Errorf("max diff %.3f/255, want bit-exact", maxd)
			}
		})
	}
	t.Logf("worst MAE over all crops: %.4f/255", worst)
}

// TestRenderCenterMatchesPreprocess: rendering view 0's stored (float32) box is the eval
// transform bit for bit (see Render's comment on how the fractions are read back).
func TestRenderCenterMatchesPreprocess(t *testing.T) {
	ref := loadReference(t)
	worstMean, worstMax := 0.0, 0.0
	for name, s := range ref.Settings {
		for _, e := range ref.Entries {
			if e.Kind != "decode" || e.Setting != "rgb" {
				continue
			}
			t.Run(name+"/"+e.ID, func(t *testing.T) {
				cfg := s.config()
				img := loadTestImage(t, e.ID, cfg.Channels)
				want := make([]float32, TensorLen(cfg.Channels, cfg.Crop))
				if err := Preprocess(want, img, cfg); err != nil {
					t.Fatal(err)
				}
				v, err := ViewFor(img.Width, img.Height, 0, 0, cfg, ViewConfig{})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, len(want))
				if err := Render(got, img, v, cfg.Crop, cfg); err != nil {
					t.Fatal(err)
				}
				mean, maxd := maeLevels(got, want, s.Std)
				worstMean, worstMax = max(worstMean, mean), max(worstMax, maxd)
				if maxd != 0 {
					t.Errorf("view 0 differs from Resize+CenterCrop: MAE %.4f/255, max %.2f/255", mean, maxd)
				}
			})
		}
	}
	t.Logf("view 0 against Preprocess: worst MAE %.5f/255, worst single sample %.2f/255", worstMean, worstMax)
}

// TestDefaultNorm: the one default table, and its float32 values (what pixels are normalised
// with) are those of the float32 literals dataset used before the table was float64, so the
// rendered tensors of a store that left mean and std out are unchanged.
func TestDefaultNorm(t *testing.T) {
	for _, tc := range []struct {
		channels          int
		wantMean, wantStd []float32
	}{
		{3, []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}},
		{1, []float32{0.5}, []float32{0.5}},
	} {
		mean, std := DefaultNorm(tc.channels)
		for i := range tc.wantMean {
			if float32(mean[i]) != tc.wantMean[i] || float32(std[i]) != tc.wantStd[i] {
				t.Fatalf("channels %d: DefaultNorm = %v, %v; want %v, %v in float32", tc.channels, mean, std, tc.wantMean, tc.wantStd)
			}
		}
		mean[0] = 9 // a fresh slice: the table itself is untouched
		if m, _ := DefaultNorm(tc.channels); m[0] == 9 {
			t.Fatalf("channels %d: DefaultNorm returns the table itself", tc.channels)
		}
		cfg, err := Config{Channels: tc.channels, Crop: 8}.Defaults()
		if err != nil || len(cfg.Mean) != tc.channels || float32(cfg.Mean[0]) != tc.wantMean[0] {
			t.Fatalf("channels %d: Defaults = %v, %v", tc.channels, cfg.Mean, err)
		}
	}
	if got, err := PerChannel("mean", []float64{0.25}, 3); err != nil || len(got) != 3 || got[2] != 0.25 {
		t.Fatalf("PerChannel one value = %v, %v", got, err)
	}
	if _, err := PerChannel("std", []float64{1, 2}, 3); err == nil || !strings.Contains(err.Error(), "std has 2 values for 3 channels") {
		t.Fatalf("PerChannel two for three: %v", err)
	}
}
