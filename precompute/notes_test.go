package precompute_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/precompute"
)

// TestNotes: images PIL's conversion renders unlike their picture are labelled as PIL would
// label them, and counted, each kind with its first image.
func TestNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cls := filepath.Join(dir, "a")
	if err := os.MkdirAll(cls, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(cls, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testdata, "images", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put("1_gray16.png", read("png/gray16_26x34.png"))
	put("2_plain.png", read("png/rgb_40x30.png"))
	// A JPEG with an APP1 EXIF segment after SOI: big-endian TIFF, IFD0 holding Orientation 6.
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}
	seg := append([]byte("Exif\x00\x00"), tiff...)
	jpg := read("jpeg/baseline420_45x33.jpg")
	exif := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0, byte(len(seg) + 2)}, seg...)
	put("3_rotated.jpg", append(exif, jpg[2:]...))
	put("4_rotated.jpg", append(exif, jpg[2:]...))
	m := image.NewNRGBA(image.Rect(0, 0, 20, 20)) // black, a square of it opaque
	for y := 5; y < 15; y++ {
		for x := 5; x < 15; x++ {
			m.SetNRGBA(x, y, color.NRGBA{A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	put("5_alpha.png", buf.Bytes())

	s := runJob(t, precompute.Options{Model: model("tiny_regnet.onnx"), Data: dir, Out: filepath.Join(t.TempDir(), "labels"),
		ClassMapFile: writeFile(t, "map.tsv", "a\t0\n"), Workers: 2, Threads: 1})
	if s.Done != 5 || s.Failed != 0 {
		t.Fatalf("done %d failed %d, want 5 done", s.Done, s.Failed)
	}
	// The lines the summary prints for them: cmd/precompute's TestSummaryWrite.
	for _, tc := range []struct {
		name      string
		got, want precompute.NoteCount
	}{
		{"16-bit", s.Clipped16, precompute.NoteCount{Images: 1, First: "a/1_gray16.png"}},
		{"alpha only", s.AlphaOnly, precompute.NoteCount{Images: 1, First: "a/5_alpha.png"}},
		{"EXIF", s.EXIFRotated, precompute.NoteCount{Images: 2, First: "a/3_rotated.jpg"}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}
