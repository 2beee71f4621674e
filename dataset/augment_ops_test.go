package dataset

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The reference made by scripts/augment_reference.py: PIL's outputs of timm's op calls.
type augRefEntry struct {
	Kind     string    `json:"kind"`
	Name     string    `json:"name"`
	Shape    []int     `json:"shape"`
	Dtype    string    `json:"dtype"`
	Offset   int       `json:"offset"`
	Input    string    `json:"input"`
	Arg      *float64  `json:"arg"`
	Resample string    `json:"resample"`
	Fill     []uint8   `json:"fill"`
	Lam      float64   `json:"lam"`
	Box      []int     `json:"box"`
	Labels   []int     `json:"labels"`
	Partner  []int     `json:"partner"`
	Lams     []float64 `json:"lams"`
	Loss     float64   `json:"loss"`
	Smooth   float64   `json:"smoothing"`
	Size     int       `json:"size"`
	Interp   string    `json:"interpolation"`
	Flip     bool      `json:"flip"`
	Mean     []float64 `json:"mean"`
	Std      []float64 `json:"std"`
	Ops      [][2]any  `json:"ops"`
	data     []byte
}

func loadAugRef(t testing.TB) []*augRefEntry {
	t.Helper()
	dir := filepath.Join("testdata", "augment")
	js, err := os.ReadFile(filepath.Join(dir, "ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Entries []*augRefEntry `json:"entries"`
	}
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "ref.bin.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ref.Entries {
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		if e.Dtype != "uint8" {
			n *= 4
			if e.Dtype == "float64" {
				n *= 2
			}
		}
		e.data = bin[e.Offset : e.Offset+n]
	}
	return ref.Entries
}

func (e *augRefEntry) image() *Image {
	c := 1
	if len(e.Shape) == 3 {
		c = e.Shape[2]
	}
	return &Image{Width: e.Shape[1], Height: e.Shape[0], Channels: c, Pix: e.data}
}

// applyArg runs the op named as timm names its function, with the argument after level→arg.
func applyArg(t *testing.T, e *augRefEntry, m *Image) *Image {
	a := 0.0
	if e.Arg != nil {
		a = *e.Arg
	}
	var f filter
	if e.Resample != "" {
		var err error
		if f, err = filterFor(e.Resample); err != nil {
			t.Fatal(err)
		}
	}
	w, h := float64(m.Width), float64(m.Height)
	switch e.Name {
	case "AutoContrast":
		return autoContrast(m)
	case "Equalize":
		return equalize(m)
	case "Invert":
		return invert(m)
	case "Posterize":
		return posterize(m, int(a))
	case "Solarize":
		return solarize(m, int(a))
	case "SolarizeAdd":
		return solarizeAdd(m, int(a), 128)
	case "Color":
		return colorOp(m, a)
	case "Contrast":
		return contrast(m, a)
	case "Brightness":
		return brightness(m, a)
	case "Sharpness":
		return sharpness(m, a)
	case "Rotate":
		return rotate(m, a, f, e.Fill)
	case "ShearX":
		return affine(m, [6]float64{1, a, 0, 0, 1, 0}, f, e.Fill)
	case "ShearY":
		return affine(m, [6]float64{1, 0, 0, a, 1, 0}, f, e.Fill)
	case "TranslateXRel":
		return affine(m, [6]float64{1, 0, a * w, 0, 1, 0}, f, e.Fill)
	case "TranslateYRel":
		return affine(m, [6]float64{1, 0, 0, 0, 1, a * h}, f, e.Fill)
	}
	t.Fatalf("unknown op %s", e.Name)
	return nil
}

// TestAugmentOpsMatchPIL: every RandAugment op on RGB 32×32, RGB 20×12 and gray 28×28
// (Fashion-MNIST) inputs, at several arguments and with both filters, equals Pillow 9.4's
// output of timm's call bit for bit.
func TestAugmentOpsMatchPIL(t *testing.T) {
	entries := loadAugRef(t)
	inputs := map[string]*Image{}
	for _, e := range entries {
		if e.Kind == "input" {
			inputs[e.Name] = e.image()
		}
	}
	n := 0
	for _, e := range entries {
		if e.Kind != "op" {
			continue
		}
		arg := "-"
		if e.Arg != nil {
			arg = fmt.Sprint(*e.Arg)
		}
		t.Run(fmt.Sprintf("%s/%s/%s/%s", e.Input, e.Name, arg, e.Resample), func(t *testing.T) {
			in := inputs[e.Input]
			before := append([]uint8(nil), in.Pix...)
			got := applyArg(t, e, in)
			want := e.image()
			if string(in.Pix) != string(before) {
				t.Fatal("the op changed its input")
			}
			diff, maxd := 0, 0
			for i := range want.Pix {
				d := int(got.Pix[i]) - int(want.Pix[i])
				if d != 0 {
					diff++
					maxd = max(maxd, d, -d)
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d samples differ from PIL's (at most %d levels)", diff, len(want.Pix), maxd)
			}
		})
		n++
	}
	if n < 150 {
		t.Fatalf("only %d op cases in the reference", n)
	}
}
