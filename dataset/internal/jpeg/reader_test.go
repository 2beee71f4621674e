package jpeg

import (
	"bytes"
	"image"
	stdjpeg "image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// TestAgreesWithStandardDecoder: on every test JPEG this decoder gives the standard library's
// image, up to the two IDCTs' rounding (a few levels at most). Bit-exactness against libjpeg
// is tested in dataset/ against PIL's pixels.
func TestAgreesWithStandardDecoder(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "images", "jpeg", "*"))
	if len(files) == 0 {
		t.Fatal("no test JPEGs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			std, err := stdjpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if ours.Bounds() != std.Bounds() {
				t.Fatalf("bounds %v, standard %v", ours.Bounds(), std.Bounds())
			}
			a, b := planes(ours), planes(std)
			if len(a) != len(b) {
				t.Fatalf("%T vs %T", ours, std)
			}
			for i := range a {
				for j := range a[i] {
					if d := int(a[i][j]) - int(b[i][j]); d > 4 || d < -4 {
						t.Fatalf("plane %d sample %d: %d, standard %d", i, j, a[i][j], b[i][j])
					}
				}
			}
		})
	}
}

func planes(m image.Image) [][]byte {
	switch m := m.(type) {
	case *image.YCbCr:
		return [][]byte{m.Y, m.Cb, m.Cr}
	case *image.Gray:
		return [][]byte{m.Pix}
	case *image.CMYK:
		return [][]byte{m.Pix}
	}
	return nil
}
