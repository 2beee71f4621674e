package dataset

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The torchvision reference tensors made by scripts/torchvision_reference.py.
type refSetting struct {
	Channels      int       `json:"channels"`
	Resize        int       `json:"resize"`
	Crop          int       `json:"crop"`
	Interpolation string    `json:"interpolation"`
	Mean          []float64 `json:"mean"`
	Std           []float64 `json:"std"`
}

type refEntry struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Setting string `json:"setting"`
	Shape   []int  `json:"shape"`
	Dtype   string `json:"dtype"`
	Offset  int    `json:"offset"`
	Label   *int   `json:"label"`
	Box     []int  `json:"box"`
	Flip    bool   `json:"flip"`
	Size    int    `json:"size"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`

	U8  []uint8   `json:"-"`
	F32 []float32 `json:"-"`
}

type reference struct {
	Settings map[string]refSetting `json:"settings"`
	Classes  []string              `json:"classes"`
	Entries  []*refEntry           `json:"entries"`
}

func (s refSetting) config() Config {
	return Config{Resize: s.Resize, Crop: s.Crop, Interpolation: s.Interpolation, Mean: s.Mean, Std: s.Std, Channels: s.Channels}
}

func loadReference(t testing.TB) *reference {
	t.Helper()
	dir := filepath.Join("..", "testdata", "preprocess")
	js, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "reference.bin.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ref.Entries {
		n := e.Shape[0] * e.Shape[1] * e.Shape[2]
		switch e.Dtype {
		case "uint8":
			e.U8 = blob[e.Offset : e.Offset+n]
		case "float32":
			e.F32 = make([]float32, n)
			for i := range n {
				e.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[e.Offset+4*i:]))
			}
		}
	}
	return &ref
}

// chw returns an image's samples in CHW order, as torchvision's tensors hold them.
func chw(m *Image) []uint8 {
	out := make([]uint8, len(m.Pix))
	n := m.Width * m.Height
	for i := range n {
		for c := range m.Channels {
			out[c*n+i] = m.Pix[i*m.Channels+c]
		}
	}
	return out
}

// diffU8 returns the mean and max absolute difference of two sample slices, in levels.
func diffU8(a, b []uint8) (mean float64, maxd int) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxd = max(maxd, d)
	}
	return float64(sum) / float64(len(a)), maxd
}
