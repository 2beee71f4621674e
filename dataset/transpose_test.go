package dataset

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// pilPNG reads one of testdata/exif's PNGs (8-bit RGB, written by make_exif_ref.py) as an Image.
func pilPNG(t *testing.T, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := p.Bounds()
	m := NewImage(b.Dx(), b.Dy(), 3)
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := p.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := (y*m.Width + x) * 3
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	}
	return m
}

// TestTransposeMatchesPIL: for each EXIF orientation, Decode then Transpose gives the pixels
// of PIL's ImageOps.exif_transpose(Image.open(jpg)).convert("RGB") bit for bit.
func TestTransposeMatchesPIL(t *testing.T) {
	dir := filepath.Join("testdata", "exif")
	plain, err := Decode(readTestImage(t, "jpeg/baseline420_45x33.jpg"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Orientation != 0 || Transpose(plain, plain.Orientation) != plain {
		t.Errorf("no EXIF: orientation %d, Transpose not the image itself", plain.Orientation)
	}
	for n := 1; n <= 8; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("orient-%d.jpg", n)))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data, 3)
			if err != nil {
				t.Fatal(err)
			}
			if m.Orientation != n {
				t.Fatalf("Orientation %d, want %d", m.Orientation, n)
			}
			if !slices.Equal(m.Pix, plain.Pix) {
				t.Fatal("the decoded pixels differ from the file without EXIF")
			}
			before := slices.Clone(m.Pix)
			got := Transpose(m, m.Orientation)
			if n == 1 && got != m {
				t.Error("orientation 1: Transpose is not the image itself")
			}
			if !slices.Equal(m.Pix, before) {
				t.Error("Transpose changed its argument")
			}
			want := pilPNG(t, filepath.Join(dir, fmt.Sprintf("orient-%d.png", n)))
			if got.Width != want.Width || got.Height != want.Height || got.Channels != 3 {
				t.Fatalf("%dx%dx%d, PIL %dx%d", got.Width, got.Height, got.Channels, want.Width, want.Height)
			}
			if !slices.Equal(got.Pix, want.Pix) {
				t.Fatal("pixels differ from PIL's exif_transpose")
			}
			if n > 1 && (got.Orientation != 0 || got.Notes&NoteEXIFRotated == 0) {
				t.Errorf("Orientation %d Notes %v: want 0 and NoteEXIFRotated kept", got.Orientation, got.Notes)
			}
		})
	}
}

// TestTransposeGrey: one-channel images turn the same way (a 3×2 ramp, orientation 6).
func TestTransposeGrey(t *testing.T) {
	m := &Image{Width: 3, Height: 2, Channels: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}}
	got := Transpose(m, 6) // a quarter turn clockwise
	if want := []uint8{4, 1, 5, 2, 6, 3}; got.Width != 2 || got.Height != 3 || !slices.Equal(got.Pix, want) {
		t.Fatalf("%dx%d %v, want 2x3 %v", got.Width, got.Height, got.Pix, want)
	}
}

// TestLoadImageEXIFTranspose: LoadImage (plain and drafted) turns images upright only with
// Config.EXIFTranspose.
func TestLoadImageEXIFTranspose(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "exif", "orient-6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		w, h int
	}{
		{Config{Resize: 8, Crop: 8}, 45, 33},
		{Config{Resize: 8, Crop: 8, EXIFTranspose: true}, 33, 45},
		{Config{Resize: 40, Crop: 8, Draft: true, EXIFTranspose: true}, 33, 45},
	} {
		cfg, err := c.cfg.Defaults()
		if err != nil {
			t.Fatal(err)
		}
		m, err := LoadImage(src, 0, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if m.Width != c.w || m.Height != c.h {
			t.Errorf("%+v: %dx%d, want %dx%d", c.cfg, m.Width, m.Height, c.w, c.h)
		}
	}
}
