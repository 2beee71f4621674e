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
	"testing"
)

// turboCases are the JPEGs the libjpeg-turbo path is checked on: every test image (4:2:0,
// 4:2:2, 4:4:4, grey, progressive, CMYK, odd sizes) and an ImageNet-sized one.
func turboCases(t *testing.T) map[string][]byte {
	t.Helper()
	cases := map[string][]byte{"bench_500x375": benchJPEGT(t)}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "images", "jpeg", "*"))
	if err != nil {
		t.Fatal(err)
	}
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
// latter checked against PIL by TestDecodeMatchesPIL) agree on every sample, and only CMYK
// is left to the Go decoder.
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
				if name == "cmyk_34x38.jpg" {
					if !errors.Is(err, errTurboColorspace) {
						t.Fatalf("CMYK: err = %v, want it left to the Go decoder", err)
					}
					return
				}
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
	draft, err := DecodeDraft(data, 3, 256, 256)
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
			got, err := DecodeDraft(data, 3, s, s)
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
