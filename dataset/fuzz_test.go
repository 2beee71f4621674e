package dataset

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, patterns ...string) {
	for _, pat := range patterns {
		files, err := filepath.Glob(filepath.Join("..", "testdata", pat))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				continue // folders
			}
			f.Add(data)
		}
	}
}

// FuzzDecode: any bytes either decode to a consistent image that preprocesses and renders, or
// fail with one of Decode's sentinel errors; never a panic.
func FuzzDecode(f *testing.F) {
	addSeeds(f, "images/*/*", "images/*/*/*", "bad/*")
	f.Fuzz(func(t *testing.T, data []byte) {
		// Valid images up to MaxPixels are legal but make a slow fuzz worker; the limit itself
		// is TestDecodeBad's.
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && int64(cfg.Width)*int64(cfg.Height) > 1<<16 {
			t.Skip()
		}
		for _, ch := range []int{1, 3} {
			m, err := Decode(data, ch)
			if err != nil {
				if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				continue
			}
			if m.Channels != ch || m.Width <= 0 || m.Height <= 0 || len(m.Pix) != m.Width*m.Height*ch {
				t.Fatalf("inconsistent image %dx%dx%d, %d samples", m.Width, m.Height, m.Channels, len(m.Pix))
			}
			cfg := Config{Resize: 9, Crop: 8, Channels: ch, Interpolation: "bicubic"}
			dst := make([]float32, TensorLen(ch, 8))
			if err := Preprocess(dst, m, cfg); err != nil {
				t.Fatal(err)
			}
			v, err := RandomView(m.Width, m.Height, len(data), 1, ViewConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := Render(dst, m, v, 8, cfg); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseIDX: any bytes either parse to dimensions whose product is the data length, or fail
// with ErrBadIDX.
func FuzzParseIDX(f *testing.F) {
	addSeeds(f, "idx/*")
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 2, 7, 9})
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		dims, pix, err := ParseIDX(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadIDX) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(pix) {
			t.Fatalf("dims %v, %d bytes", dims, len(pix))
		}
	})
}
