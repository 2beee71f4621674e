package export

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/student"
)

// The committed fixture that scripts/check_safetensors_torch.py checks in plain PyTorch: an
// fm-tiny student (testModel, seed fixtureSeed) exported as safetensors, an input batch (the
// three images of testdata/idx/t10k-images-idx3-ubyte, normalised as Fashion-MNIST, and two
// seeded normal images), and deitkd's logits for it. `go test ./export -run Fixture -update`
// rewrites it; otherwise the test checks that it still holds.
var update = flag.Bool("update", false, "rewrite testdata/export from the current code")

const (
	fixtureDir         = "../testdata/export"
	fixtureSafetensors = fixtureDir + "/fm_tiny.safetensors"
	fixtureInput       = fixtureDir + "/fm_tiny.input.f32"
	fixtureLogits      = fixtureDir + "/fm_tiny.logits.json"
	fixtureSeed        = 2026
	fixtureRandom      = 2 // seeded normal images after the IDX ones
)

// fixtureRef is fm_tiny.logits.json.
type fixtureRef struct {
	Model        string      `json:"model"`
	InputFile    string      `json:"input_file"`
	InputShape   []int       `json:"input_shape"`
	ClsLogits    [][]float32 `json:"cls_logits"`
	DistLogits   [][]float32 `json:"dist_logits"`
	FusedSoftmax [][]float32 `json:"fused_softmax"`
	FusedLogits  [][]float32 `json:"fused_logits"`
}

// fashionMNIST is the preprocessing written into the fixture (the dataset's mean and std).
var fashionMNIST = &dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.2860}, Std: []float64{0.3530}, Channels: 1}

var fashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

func fixtureImages(t *testing.T, c student.Config) ([]float32, int) {
	t.Helper()
	f, err := os.Open("../testdata/idx/t10k-images-idx3-ubyte")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dims, px, err := dataset.ParseIDX(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(dims) != 3 || dims[1] != 28 || dims[2] != 28 {
		t.Fatalf("IDX dims %v, want N×28×28", dims)
	}
	x := make([]float32, 0, (dims[0]+fixtureRandom)*784)
	mean, std := fashionMNIST.Mean[0], fashionMNIST.Std[0]
	for _, p := range px {
		x = append(x, float32((float64(p)/255-mean)/std))
	}
	x = append(x, testImages(c, fixtureRandom, fixtureSeed)...)
	return x, dims[0] + fixtureRandom
}

func rows(x []float32, k int) [][]float32 {
	r := make([][]float32, len(x)/k)
	for i := range r {
		r[i] = x[i*k : (i+1)*k]
	}
	return r
}

func flat(r [][]float32) []float32 {
	var x []float32
	for _, row := range r {
		x = append(x, row...)
	}
	return x
}

func TestFixture(t *testing.T) {
	if *update {
		writeFixture(t)
	}
	raw, err := os.ReadFile(fixtureSafetensors)
	if err != nil {
		t.Fatal(err)
	}
	var ref fixtureRef
	b, err := os.ReadFile(fixtureLogits)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile(filepath.Join(fixtureDir, ref.InputFile))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(in)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(in[4*i:]))
	}
	n := ref.InputShape[0]

	f, err := ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config()
	if len(x) != n*c.Channels*c.ImageSize*c.ImageSize {
		t.Fatalf("%d input values for shape %v", len(x), ref.InputShape)
	}
	// The file is what the exporter writes for the model it holds: same bytes.
	var again bytes.Buffer
	if err := Safetensors(&again, m, Options{Preprocess: fashionMNIST, ClassNames: fashionMNISTClasses}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), raw) {
		t.Error("re-exporting the fixture's model gives other bytes")
	}
	// deitkd still computes the committed logits (its kernels may change summation order).
	cls, dist, err := m.Infer(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]float32{
		"cls_logits":    {cls, flat(ref.ClsLogits)},
		"dist_logits":   {dist, flat(ref.DistLogits)},
		"fused_softmax": {fuse(cls, dist, c.Classes, student.FuseProbs), flat(ref.FusedSoftmax)},
		"fused_logits":  {fuse(cls, dist, c.Classes, student.FuseLogits), flat(ref.FusedLogits)},
	} {
		if d := maxAbsDiff(t, pair[0], pair[1]); d > onnxTolerance {
			t.Errorf("%s: deitkd now differs from the fixture by %.3g", name, d)
		}
	}
	// And ONNX Runtime, on the ONNX export of the same model, agrees with the fixture.
	path, err := WriteFile(t.TempDir(), FormatONNX, m, Options{Preprocess: fashionMNIST, ClassNames: fashionMNISTClasses})
	if err != nil {
		t.Fatal(err)
	}
	got := runONNX(t, path, []string{FusedName, ClsName, DistName}, x, n)
	for name, want := range map[string][][]float32{FusedName: ref.FusedSoftmax, ClsName: ref.ClsLogits, DistName: ref.DistLogits} {
		d := maxAbsDiff(t, got[name], flat(want))
		t.Logf("fixture %s: max |ONNX Runtime − deitkd| = %.3g", name, d)
		if d > onnxTolerance {
			t.Errorf("fixture %s: ONNX Runtime differs by %.3g", name, d)
		}
	}
}

func writeFixture(t *testing.T) {
	m := testModel(t, student.Config{}, fixtureSeed)
	c := m.Config()
	x, n := fixtureImages(t, c)
	cls, dist, err := m.Infer(x, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFile(fixtureDir, FormatSafetensors, m, Options{Preprocess: fashionMNIST, ClassNames: fashionMNISTClasses}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(fixtureDir, SafetensorsFile), fixtureSafetensors); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(in[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(fixtureInput, in, 0o644); err != nil {
		t.Fatal(err)
	}
	K := c.Classes
	ref := fixtureRef{
		Model: filepath.Base(fixtureSafetensors), InputFile: filepath.Base(fixtureInput),
		InputShape: []int{n, c.Channels, c.ImageSize, c.ImageSize},
		ClsLogits:  rows(cls, K), DistLogits: rows(dist, K),
		FusedSoftmax: rows(fuse(cls, dist, K, student.FuseProbs), K), FusedLogits: rows(fuse(cls, dist, K, student.FuseLogits), K),
	}
	b, err := json.MarshalIndent(ref, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixtureLogits, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
