package dataset

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// tiffOrientation is a TIFF-structured EXIF block whose IFD0 holds one entry: Orientation of
// the given type (3 SHORT, 4 LONG) and value.
func tiffOrientation(bo binary.ByteOrder, typ uint16, v uint32) []byte {
	b := make([]byte, 8+2+12+4)
	if bo == binary.ByteOrder(binary.LittleEndian) {
		copy(b, "II")
	} else {
		copy(b, "MM")
	}
	bo.PutUint16(b[2:], 42)
	bo.PutUint32(b[4:], 8)
	bo.PutUint16(b[8:], 1)
	e := b[10:]
	bo.PutUint16(e, 0x0112)
	bo.PutUint16(e[2:], typ)
	bo.PutUint32(e[4:], 1)
	if typ == 3 {
		bo.PutUint16(e[8:], uint16(v))
	} else {
		bo.PutUint32(e[8:], v)
	}
	return b
}

// withJPEGEXIF inserts an APP1 "Exif\0\0" segment holding tiff right after a JPEG's SOI.
func withJPEGEXIF(jpg, tiff []byte) []byte {
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE1, byte((len(seg)+2)>>8), byte(len(seg)+2))
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// withPNGEXIF inserts an eXIf chunk holding data after a PNG's IHDR chunk.
func withPNGEXIF(p, data []byte) []byte {
	ihdrEnd := 8 + 8 + 13 + 4
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

func readTestImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEXIFOrientation(t *testing.T) {
	jpg := readTestImage(t, "jpeg/baseline420_45x33.jpg")
	pngData := readTestImage(t, "png/rgb_23x57.png")
	be, le := binary.ByteOrder(binary.BigEndian), binary.ByteOrder(binary.LittleEndian)
	bad := tiffOrientation(be, 3, 6)
	binary.BigEndian.PutUint32(bad[4:], 1<<30) // IFD0 far past the end
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"jpeg, big-endian SHORT 6", withJPEGEXIF(jpg, tiffOrientation(be, 3, 6)), 6},
		{"jpeg, little-endian SHORT 8", withJPEGEXIF(jpg, tiffOrientation(le, 3, 8)), 8},
		{"jpeg, LONG 3", withJPEGEXIF(jpg, tiffOrientation(le, 4, 3)), 3},
		{"jpeg, orientation 1", withJPEGEXIF(jpg, tiffOrientation(be, 3, 1)), 1},
		{"jpeg, orientation 9 is none", withJPEGEXIF(jpg, tiffOrientation(be, 3, 9)), 0},
		{"jpeg, IFD0 out of bounds", withJPEGEXIF(jpg, bad), 0},
		{"jpeg without EXIF", jpg, 0},
		{"png eXIf", withPNGEXIF(pngData, tiffOrientation(be, 3, 5)), 5},
		{"png eXIf with Exif prefix", withPNGEXIF(pngData, append([]byte("Exif\x00\x00"), tiffOrientation(le, 3, 2)...)), 2},
		{"png without eXIf", pngData, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, turbo := range []bool{false, haveTurbo} {
				m, err := decode(tc.data, 3, 0, 0, turbo, nil)
				if err != nil {
					t.Fatal(err)
				}
				if m.Orientation != tc.want {
					t.Errorf("turbo %v: orientation %d, want %d", turbo, m.Orientation, tc.want)
				}
				if got := m.Notes&NoteEXIFRotated != 0; got != (tc.want > 1) {
					t.Errorf("turbo %v: NoteEXIFRotated %v with orientation %d", turbo, got, tc.want)
				}
			}
			// Pixels are untouched: those of the file without the metadata.
			orig := jpg
			if sniff(tc.data) == fmtPNG {
				orig = pngData
			}
			a, err := Decode(orig, 3)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Decode(tc.data, 3)
			if a.Width != b.Width || a.Height != b.Height || !bytes.Equal(a.Pix, b.Pix) {
				t.Error("EXIF changed the pixels")
			}
		})
	}
}

func TestDecodeNotes(t *testing.T) {
	// Constant colour, the picture in alpha alone: a white disc on transparent black.
	alphaOnly := image.NewNRGBA(image.Rect(0, 0, 16, 12))
	for y := range 12 {
		for x := range 16 {
			if (x-8)*(x-8)+(y-6)*(y-6) < 16 {
				alphaOnly.SetNRGBA(x, y, color.NRGBA{A: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, alphaOnly); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want Note
	}{
		{"16-bit grey clipped", readTestImage(t, "png/gray16_26x34.png"), Note16Bit},
		{"RGBA with a colour picture", readTestImage(t, "png/rgba_48x36.png"), 0},
		{"RGBA with the picture only in alpha", buf.Bytes(), NoteAlphaOnly},
		{"RGB", readTestImage(t, "png/rgb_40x30.png"), 0},
		{"paletted with transparency", readTestImage(t, "png/paletted_trns_50x25.png"), 0},
		{"JPEG", readTestImage(t, "jpeg/baseline420_45x33.jpg"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ch := range []int{1, 3} {
				m, err := Decode(tc.data, ch)
				if err != nil {
					t.Fatal(err)
				}
				if m.Notes != tc.want {
					t.Errorf("%d channels: notes %b, want %b", ch, m.Notes, tc.want)
				}
			}
		})
	}
}

// FuzzEXIFOrientation: the EXIF readers never panic and give 0..8 whatever the bytes.
func FuzzEXIFOrientation(f *testing.F) {
	addSeeds(f, "images/*/*")
	f.Add(tiffOrientation(binary.BigEndian, 3, 6))
	f.Add(tiffOrientation(binary.LittleEndian, 4, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, f := range []format{fmtJPEG, fmtPNG, fmtWebP, fmtTIFF, fmtGIF} {
			if o := orientation(data, f); o < 0 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
		for _, b := range [][]byte{jpegEXIF(data), pngEXIF(data), webpEXIF(data)} {
			if o := exifOrientation(b); o < 0 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
	})
}
