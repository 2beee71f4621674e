package dataset

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes is an IDX file of unsigned bytes with dims and zero data.
func idxBytes(dims ...uint32) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	size := 1
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
		size *= int(d)
	}
	return append(b, make([]byte, size)...)
}

// TestOpenIDXWrongKind: an images file that is not 3-D, or a labels file that is not 1-D, is
// refused saying what the file is (its magic and shape) and what magic was expected.
func TestOpenIDXWrongKind(t *testing.T) {
	for _, tt := range []struct {
		name           string
		images, labels []byte
		want           []string
	}{
		{"4-D images", idxBytes(2, 3, 4, 5), nil,
			[]string{"synth-images-idx3-ubyte: magic 0x00000804 is a 4-D uint8 IDX file", "an images file has magic 0x00000803"}},
		{"labels as images", idxBytes(2), nil,
			[]string{"synth-images-idx3-ubyte: magic 0x00000801 is an IDX labels file (1-D uint8)", "an images file has magic 0x00000803"}},
		{"images as labels", idxBytes(2, 4, 4), idxBytes(2, 4, 4),
			[]string{"synth-labels-idx1-ubyte: magic 0x00000803 is an IDX images file (3-D uint8)", "a labels file has magic 0x00000801"}},
		{"2-D labels", idxBytes(2, 4, 4), idxBytes(2, 1),
			[]string{"synth-labels-idx1-ubyte: magic 0x00000802 is a 2-D uint8 IDX file", "a labels file has magic 0x00000801"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "synth")
			if err := os.WriteFile(prefix+"-images-idx3-ubyte", tt.images, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.labels != nil {
				if err := os.WriteFile(prefix+"-labels-idx1-ubyte", tt.labels, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := OpenIDX(prefix)
			if !errors.Is(err, ErrBadIDX) {
				t.Fatalf("error %v, want ErrBadIDX", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
