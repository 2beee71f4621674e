package dataset

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDecodeMatchesPIL compares every good test image, decoded to RGB and to L, with PIL's
// Image.open(f).convert(mode). PNG, GIF, lossless WebP and the conversions are exact; JPEG and
// lossy WebP may differ by the decoders' IDCT only.
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
			if mean > 0.5 {
				t.Errorf("mean abs diff %.4f levels (max %d) from PIL", mean, maxd)
			}
		})
	}
}
