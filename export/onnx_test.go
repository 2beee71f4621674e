package export

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/export/internal/onnxpb"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/student"
	"github.com/deitkd/deitkd/teacher"
)

// onnxTolerance: ONNX Runtime and deitkd's kernels both compute in float32, summing in other
// orders (BLAS blocking, fused LayerNorm and GELU) over at most a few hundred terms per
// output, and deitkd's GELU uses A&S 7.1.26 for erf (|error| ≤ 1.5e-7); logits of a few units
// then agree to about 1e-5. The issue asks for 1e-4.
const onnxTolerance = 1e-4

// runONNX opens path in ONNX Runtime through teacher/, once per output, checks that the
// model declares exactly outputs, in order, and returns each output's values for the n
// images x.
func runONNX(t *testing.T, path string, outputs []string, x []float32, n int) map[string][]float32 {
	t.Helper()
	got := map[string][]float32{}
	for _, name := range outputs {
		m, err := teacher.Open(path, teacher.Options{Output: name, Threads: 1})
		if err != nil {
			t.Fatalf("open %s for output %s: %v", path, name, err)
		}
		var declared []string
		for _, o := range m.Info().Outputs {
			declared = append(declared, o.Name)
		}
		if !reflect.DeepEqual(declared, outputs) {
			t.Errorf("outputs %q, want %q", declared, outputs)
		}
		y, err := m.Run(x, n)
		if cerr := m.Close(); cerr != nil {
			t.Errorf("close: %v", cerr)
		}
		if err != nil {
			t.Fatalf("run %s output %s: %v", path, name, err)
		}
		got[name] = y
	}
	return got
}

// TestONNXMatchesStudent exports seeded students, runs the ONNX file in ONNX Runtime at
// batch sizes 1 and 5 from one session-free file (a dynamic batch), and compares every
// output with deitkd's own Infer on the same images.
func TestONNXMatchesStudent(t *testing.T) {
	cases := []struct {
		name string
		cfg  student.Config
		fuse student.Fuse
	}{
		{"fm-tiny", student.Config{}, ""},
		{"fm-tiny/fuse-logits", student.Config{}, student.FuseLogits},
		// deit-tiny's width, heads, patch and channels (head size 64, 1000 classes) on a 32×32
		// image and two blocks, to stay cheap.
		{"deit-tiny-shaped", student.Config{ImageSize: 32, Channels: 3, Patch: 16, Dim: 192, Depth: 2, Heads: 3, Classes: 1000}, ""},
		{"plain-vit", student.Config{Depth: 2, NoDistToken: true}, ""},
		{"plain-vit/fuse-logits", student.Config{Depth: 2, NoDistToken: true}, student.FuseLogits},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := testModel(t, tc.cfg, uint64(100+i))
			c := m.Config()
			path, err := WriteFile(t.TempDir(), FormatONNX, m, Options{Fuse: tc.fuse})
			if err != nil {
				t.Fatal(err)
			}
			outputs := []string{FusedName, ClsName, DistName}
			if c.NoDistToken {
				outputs = outputs[:2]
			}
			for _, n := range []int{1, 5} {
				x := testImages(c, n, uint64(n))
				cls, dist, err := m.Infer(x, n)
				if err != nil {
					t.Fatal(err)
				}
				if s := spread(cls); s < 1 {
					t.Fatalf("max |cls logit| %.3g: the test model is too flat to test anything", s)
				}
				want := map[string][]float32{FusedName: fuse(cls, dist, c.Classes, tc.fuse), ClsName: cls, DistName: dist}
				got := runONNX(t, path, outputs, x, n)
				for _, name := range outputs {
					d := maxAbsDiff(t, got[name], want[name])
					t.Logf("batch %d %s: max |ONNX Runtime − deitkd| = %.3g", n, name, d)
					if d > onnxTolerance {
						t.Errorf("batch %d %s: max abs difference %.3g > %g", n, name, d, onnxTolerance)
					}
				}
			}
		})
	}
}

// TestONNXSignature checks what a reader of the file sees: one dynamic-batch input, the
// outputs in order, opset and metadata; and that teacher/ reads the preprocessing and class
// names back as it does a teacher's.
func TestONNXSignature(t *testing.T) {
	m := testModel(t, student.Config{}, 1)
	pre := &dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
	names := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	path, err := WriteFile(t.TempDir(), FormatONNX, m, Options{Preprocess: pre, ClassNames: names, Producer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	if v := mp.GetOpsetImport()[0].GetVersion(); v != Opset {
		t.Errorf("opset %d, want %d", v, Opset)
	}
	// Every parameter is an initializer under its timm name and shape.
	inits := map[string][]int64{}
	for _, in := range mp.GetGraph().GetInitializer() {
		inits[in.GetName()] = in.GetDims()
	}
	for _, p := range m.Params() {
		if got, want := fmt.Sprint(inits[p.Name]), fmt.Sprint(p.Shape); got != want {
			t.Errorf("initializer %s has dims %s, want %s", p.Name, got, want)
		}
	}

	tm, err := teacher.Open(path, teacher.Options{Output: ClsName, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	info := tm.Info()
	if info.Input.Name != InputName || fmt.Sprint(info.Input.Dims) != "[-1 1 28 28]" || info.FixedBatch != 0 {
		t.Errorf("input %v (fixed batch %d), want %q [-1 1 28 28], dynamic", info.Input, info.FixedBatch, InputName)
	}
	var outs []string
	for _, o := range info.Outputs {
		outs = append(outs, o.String())
	}
	if want := []string{`"fused" float32 [? 10]`, `"cls_logits" float32 [? 10]`, `"dist_logits" float32 [? 10]`}; !reflect.DeepEqual(outs, want) {
		t.Errorf("outputs %q, want %q", outs, want)
	}
	gotPre, gotNames, ok, err := schema.ModelMetadata(info.Metadata)
	if err != nil || !ok {
		t.Fatalf("ModelMetadata: ok %v, err %v", ok, err)
	}
	if gotPre.Resize != pre.Resize || gotPre.Crop != pre.Crop || gotPre.Interpolation != pre.Interpolation ||
		!reflect.DeepEqual(gotPre.Mean, pre.Mean) || !reflect.DeepEqual(gotPre.Std, pre.Std) || gotPre.Channels != pre.Channels {
		t.Errorf("preprocess read back %+v, want %+v", gotPre, *pre)
	}
	if !reflect.DeepEqual(gotNames, names) {
		t.Errorf("class names read back %q, want %q", gotNames, names)
	}
	if info.Metadata[MetaFuse] != "softmax" {
		t.Errorf("%s = %q, want %q", MetaFuse, info.Metadata[MetaFuse], "softmax")
	}
}

// TestONNXDeterministic: the same model and options give the same bytes (a rerun of an
// export does not change the file's sha256, which a label store records for its teacher).
func TestONNXDeterministic(t *testing.T) {
	m := testModel(t, student.Config{Depth: 1}, 3)
	var a, b bytes.Buffer
	if err := ONNX(&a, m, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := ONNX(&b, m, Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two exports of one model differ")
	}
}

func TestOptionsRefused(t *testing.T) {
	m := testModel(t, student.Config{Depth: 1}, 4)
	ten := func(n string) []string {
		s := make([]string, 10)
		for i := range s {
			s[i] = fmt.Sprint(n, i)
		}
		return s
	}
	dup := ten("c")
	dup[7] = "c2"
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"fuse", Options{Fuse: "softmax"}, `fuse "softmax"`},
		{"too few names", Options{ClassNames: []string{"a"}}, "1 class names for 10 classes"},
		{"empty name", Options{ClassNames: append(ten("c")[:9], "")}, "class 9 has an empty name"},
		{"duplicate name", Options{ClassNames: dup}, `classes 2 and 7 are both named "c2"`},
		{"channels", Options{Preprocess: &dataset.Config{Channels: 3}}, "3 channels, the model 1"},
		{"crop", Options{Preprocess: &dataset.Config{Crop: 224}}, "crops 224 pixels, the model takes 28"},
		{"mean/std", Options{Preprocess: &dataset.Config{Mean: []float64{0.5}}}, "1 means and 0 stds"},
		{"std zero", Options{Preprocess: &dataset.Config{Mean: []float64{0.5}, Std: []float64{0}}}, "std[0] 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for format, write := range map[string]func() error{
				FormatONNX:        func() error { return ONNX(&bytes.Buffer{}, m, tc.opts) },
				FormatSafetensors: func() error { return Safetensors(&bytes.Buffer{}, m, tc.opts) },
			} {
				err := write()
				if !errors.Is(err, ErrOptions) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
					t.Errorf("%s: err %v, want ErrOptions with %q", format, err, tc.want)
				}
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	m := testModel(t, student.Config{Depth: 1}, 5)
	dir := t.TempDir()
	for _, format := range []string{FormatONNX, FormatSafetensors} {
		path, err := WriteFile(dir, format, m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := FileName(format)
		if filepath.Base(path) != want {
			t.Errorf("%s written as %s, want %s", format, path, want)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{ONNXFile, SafetensorsFile}; !reflect.DeepEqual(names, want) {
		t.Errorf("folder holds %q, want %q (no temporary files)", names, want)
	}
	if _, err := WriteFile(dir, "pt", m, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("format pt: err %v, want ErrOptions", err)
	}
	// A bad option leaves the earlier file as it was and no temporary file behind.
	before, _ := os.ReadFile(filepath.Join(dir, ONNXFile))
	if _, err := WriteFile(dir, FormatONNX, m, Options{Fuse: "max"}); !errors.Is(err, ErrOptions) {
		t.Errorf("fuse max: err %v, want ErrOptions", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ONNXFile))
	if !bytes.Equal(before, after) {
		t.Error("a refused export changed the earlier file")
	}
	if _, err := WriteFile(filepath.Join(dir, "missing"), FormatONNX, m, Options{}); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("folder holds %d entries after failures, want 2", len(ents))
	}
}
