package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeMatchesPIL compares every good test image, decoded to RGB and to L, with PIL's
// Image.open(f).convert(mode): every sample must be equal (JPEG through libjpeg's islow IDCT and
// fancy upsampling, lossy WebP through libwebp's YUV conversion).
func TestDecodeMatchesPIL(t *testing.T) {
	ref := loadReference(t)
	for _, e := range ref.Entries {
		if e.Kind != "decode" {
			continue
		}
		t.Run(e.ID+"/"+e.Setting, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "testdata", "images", filepath.FromSlash(e.ID)))
			if err != nil {
				t.Fatal(err)
			}
			ch := 3
			if e.Setting == "l" {
				ch = 1
			}
			m, err := Decode(data, ch)
			if err != nil {
				t.Fatal(err)
			}
			if m.Channels != e.Shape[0] || m.Height != e.Shape[1] || m.Width != e.Shape[2] {
				t.Fatalf("shape %dx%dx%d, PIL %v", m.Channels, m.Height, m.Width, e.Shape)
			}
			mean, maxd := diffU8(chw(m), e.U8)
			t.Logf("mean abs diff %.4f levels, max %d", mean, maxd)
			if maxd != 0 {
				t.Errorf("mean abs diff %.4f levels (max %d) from PIL, want exact", mean, maxd)
			}
		})
	}
}

// TestDecodeBad: every kind of bad file fails with its own sentinel error.
func TestDecodeBad(t *testing.T) {
	tests := []struct {
		file string
		want error
	}{
		{"zero_bytes.jpg", ErrEmpty},
		{"text.jpg", ErrNotImage},
		{"truncated.jpg", ErrCorrupt},
		{"truncated.png", ErrCorrupt},
		{"huge_dimensions.png", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "testdata", "bad", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range []int{1, 3} {
				m, err := Decode(data, ch)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Decode = %v, %v; want %v", m, err, tt.want)
				}
			}
		})
	}
	t.Run("netpbm", func(t *testing.T) {
		if _, err := Decode([]byte("P6\n2 2\n255\n"), 3); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
	t.Run("arithmetic-coded JPEG", func(t *testing.T) {
		// SOI, then an SOF9 (arithmetic coding) frame header for 8×8, one component.
		b := []byte{0xFF, 0xD8, 0xFF, 0xC9, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0}
		if _, err := Decode(b, 3); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
	t.Run("channels", func(t *testing.T) {
		if _, err := Decode([]byte("\x89PNG\r\n\x1a\n"), 2); !errors.Is(err, ErrChannels) {
			t.Fatalf("err = %v, want ErrChannels", err)
		}
	})
}

// TestDecodeAlphaNotPremultiplied: a half-transparent pixel keeps its colour (PIL drops alpha),
// where color.RGBA() would halve it.
func TestDecodeAlphaNotPremultiplied(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	m.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 128})
	m.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 0})
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(buf.Bytes(), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{200, 100, 50, 10, 20, 30}
	if !bytes.Equal(got.Pix, want) {
		t.Fatalf("pixels %v, want %v", got.Pix, want)
	}
	gray, err := Decode(buf.Bytes(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// L = (200·19595 + 100·38470 + 50·7471 + 0x8000) >> 16 = 124
	if gray.Pix[0] != 124 {
		t.Fatalf("L = %d, want 124", gray.Pix[0])
	}
}

// TestDecodeByContent: the extension does not matter, the bytes do.
func TestDecodeByContent(t *testing.T) {
	m := loadTestImage(t, "jpeg/really_jpeg.png", 3)
	if m.Width != 44 || m.Height != 31 {
		t.Fatalf("size %dx%d", m.Width, m.Height)
	}
	if !strings.HasSuffix("jpeg/really_jpeg.png", ".png") {
		t.Fatal("fixture renamed")
	}
}
