package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// turboCases are the JPEGs the libjpeg-turbo path is checked on: every test image (4:2:0,
// 4:2:2, 4:4:4, grey, progressive, CMYK, odd sizes), the CMYK/YCCK ones of testdata/cmyk and
// an ImageNet-sized one.
func turboCases(t *testing.T) map[string][]byte {
	t.Helper()
	cases := map[string][]byte{"bench_500x375": benchJPEGT(t)}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "images", "jpeg", "*"))
	if err != nil {
		t.Fatal(err)
	}
	cmyk, err := filepath.Glob(filepath.Join("testdata", "cmyk", "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, cmyk...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(f)] = data
	}
	return cases
}

// TestTurboMatchesGoDecoder: libjpeg-turbo and the pure-Go decoder (both PIL's pixels, the
// latter checked against PIL by TestDecodeMatchesPIL) agree on every sample, CMYK and YCCK
// included.
func TestTurboMatchesGoDecoder(t *testing.T) {
	if !haveTurbo {
		t.Skip("built without libjpeg-turbo (purego or no cgo)")
	}
	for name, data := range turboCases(t) {
		for _, ch := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%dch", name, ch), func(t *testing.T) {
				want, err := decode(data, ch, 0, 0, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := decodeJPEGTurbo(data, ch, want.Width, want.Height, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got.Width != want.Width || got.Height != want.Height || got.Channels != ch {
					t.Fatalf("%dx%dx%d, Go decoder %dx%dx%d", got.Width, got.Height, got.Channels, want.Width, want.Height, ch)
				}
				if mean, maxd := diffU8(got.Pix, want.Pix); maxd != 0 {
					t.Fatalf("differs from the Go decoder: mean %.4f, max %d levels", mean, maxd)
				}
			})
		}
	}
}

// TestTurboRefusesTruncated: a file cut short is refused by libjpeg-turbo (which would pad it
// with grey) and reported by Decode as corrupt, as PIL refuses it.
func TestTurboRefusesTruncated(t *testing.T) {
	data := benchJPEGT(t)
	cut := data[:len(data)/2]
	if haveTurbo {
		if _, err := decodeJPEGTurbo(cut, 3, 500, 375, 1, nil); err == nil {
			t.Fatal("libjpeg-turbo accepted a truncated file")
		}
	}
	if _, err := Decode(cut, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

// bigJPEG is a w×h JPEG (quality 90, 4:2:0) of the bench image's kind of content.
func bigJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	small, err := Decode(benchJPEGT(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			p := small.Pix[((y*small.Height/h)*small.Width+x*small.Width/w)*3:]
			m.Set(x, y, color.RGBA{p[0], p[1], p[2], 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeDraft: the scale is PIL's draft rule; drafted images are the requested fraction of
// the size (pure-Go builds ignore the draft); the eval tensor of a drafted image stays close
// to the exact one (the figure is logged; Config.Draft documents it).
func TestDecodeDraft(t *testing.T) {
	for _, tt := range []struct{ W, H, w, h, want int }{
		{500, 375, 256, 256, 1}, {1000, 750, 256, 256, 2}, {1024, 768, 256, 256, 2},
		{2048, 1536, 256, 256, 4}, {4000, 3000, 256, 256, 8}, {800, 600, 0, 0, 1},
	} {
		if got := draftDenom(tt.W, tt.H, tt.w, tt.h); got != tt.want {
			t.Errorf("draftDenom(%d, %d, %d, %d) = %d, want %d", tt.W, tt.H, tt.w, tt.h, got, tt.want)
		}
	}
	data := bigJPEG(t, 1200, 900)
	exact, err := Decode(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	draft, err := decodeDraft(data, 3, 256, 256)
	if err != nil {
		t.Fatal(err)
	}
	wantW, wantH := 1200, 900
	if haveTurbo {
		wantW, wantH = 600, 450 // min(1200/256, 900/256) = 3, rounded down to 2
	}
	if draft.Width != wantW || draft.Height != wantH {
		t.Fatalf("drafted to %dx%d, want %dx%d", draft.Width, draft.Height, wantW, wantH)
	}
	cfg := Config{Resize: 256, Crop: 224}
	a, b := make([]float32, TensorLen(3, 224)), make([]float32, TensorLen(3, 224))
	if err := Preprocess(a, exact, cfg); err != nil {
		t.Fatal(err)
	}
	if err := Preprocess(b, draft, cfg); err != nil {
		t.Fatal(err)
	}
	mean, maxd := maeLevels(b, a, ImageNetStd)
	t.Logf("1200x900 → Resize(256)+CenterCrop(224): draft against exact MAE %.3f/255, max %.1f/255", mean, maxd)
	if mean > 2 {
		t.Errorf("draft MAE %.3f/255 against the exact path", mean)
	}
}

// TestDecodeDraftMatchesPIL: DecodeDraft gives PIL's pixels after Image.draft("RGB", (S, S))
// at scales 1/2, 1/4 and 1/8 (testdata/draft, made by testdata/make_draft_ref.py).
func TestDecodeDraftMatchesPIL(t *testing.T) {
	if !haveTurbo {
		t.Skip("pure-Go build: Draft is ignored")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "draft", "photo_520x390.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []int{192, 64, 32} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			png, err := os.ReadFile(filepath.Join("testdata", "draft", fmt.Sprintf("photo_520x390.draft-%d.png", s)))
			if err != nil {
				t.Fatal(err)
			}
			want, err := Decode(png, 3)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeDraft(data, 3, s, s)
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != want.Width || got.Height != want.Height {
				t.Fatalf("drafted to %dx%d, PIL %dx%d", got.Width, got.Height, want.Width, want.Height)
			}
			if mean, maxd := diffU8(got.Pix, want.Pix); maxd != 0 {
				t.Fatalf("differs from PIL's draft: mean %.4f, max %d levels", mean, maxd)
			}
		})
	}
}

// TestDecodeCMYKMatchesPIL: CMYK and YCCK JPEGs (PIL's own CMYK writer at quality 90 and 75;
// YCCK and CMYK with Photoshop's 2x2 subsampling, and YCCK without, written through libjpeg)
// decode to PIL's Image.open(f).convert("RGB") and .convert("L") bit for bit through
// libjpeg-turbo, and to PIL's pixels after .draft("RGB", (S, S)) at 1/2 and 1/4 scale
// (testdata/cmyk, made by testdata/cmyk/make_cmyk_ref.py). The pure-Go decoder (the only one
// under -tags purego, checked here in both builds) is exact too: fourToRGB does libjpeg's
// fancy upsampling and YCCK conversion (Go's own, replication and color.YCbCrToRGB, was up to
// 29 levels off on the subsampled files and 1 level on 9.6% of the 4:4:4 YCCK one's samples).
func TestDecodeCMYKMatchesPIL(t *testing.T) {
	dir := filepath.Join("testdata", "cmyk")
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("%d CMYK JPEGs in %s, want 5", len(files), dir)
	}
	readPNG := func(t *testing.T, name string, ch int) *Image {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(data, ch)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	compare := func(t *testing.T, got, want *Image, maxOff int, what string) {
		t.Helper()
		if got.Width != want.Width || got.Height != want.Height || got.Channels != want.Channels {
			t.Fatalf("%s: %dx%dx%d, PIL %dx%dx%d", what, got.Width, got.Height, got.Channels, want.Width, want.Height, want.Channels)
		}
		mean, maxd := diffU8(got.Pix, want.Pix)
		off := 0
		for i := range got.Pix {
			if got.Pix[i] != want.Pix[i] {
				off++
			}
		}
		t.Logf("%s: %.2f%% of samples off, mean %.4f, max %d levels", what, 100*float64(off)/float64(len(got.Pix)), mean, maxd)
		if maxd > maxOff {
			t.Errorf("%s: mean abs diff %.4f levels (max %d) from PIL, want at most %d", what, mean, maxd, maxOff)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".jpg")
		t.Run(base, func(t *testing.T) {
			for _, c := range []struct {
				suffix string
				ch     int
			}{{"rgb", 3}, {"l", 1}} {
				want := readPNG(t, base+"."+c.suffix+".png", c.ch)
				got, err := Decode(data, c.ch)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, got, want, 0, c.suffix+" (Decode)")
				goDec, err := decode(data, c.ch, 0, 0, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, goDec, want, 0, c.suffix+" (pure-Go decoder)")
			}
			if !haveTurbo {
				return // Draft is ignored without libjpeg-turbo
			}
			for _, s := range []int{100, 40} {
				name := fmt.Sprintf("%s.draft-%d.png", base, s)
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					continue // too small to draft
				}
				got, err := decodeDraft(data, 3, s, s)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, got, readPNG(t, name, 3), 0, fmt.Sprintf("draft %d", s))
			}
		})
	}
}

// decodeDraft is decode drafted to w×h, as LoadImage decodes with Config.Draft.
func decodeDraft(data []byte, channels, w, h int) (*Image, error) {
	return decode(data, channels, w, h, haveTurbo, nil)
}
