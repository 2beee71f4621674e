package teacher

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/schema"
)

// models is where scripts/make_test_models.py writes the test teachers.
const models = "../testdata/models"

func modelPath(name string) string { return filepath.Join(models, name) }

// open opens a test model and closes it when the test ends. No library is a failure, not a
// skip: `make test` runs `make setup` first.
func open(t testing.TB, name string, opts Options) *Model {
	t.Helper()
	m, err := Open(modelPath(name), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close(%s): %v", name, err)
		}
	})
	return m
}

// reference is a seeded input tensor and PyTorch's logits for it (make_test_models.py).
type reference struct {
	input  []float32 // n×C×H×W
	n, per int       // images, values per image
	logits [][]float32
}

func readReference(t testing.TB, name string) reference {
	t.Helper()
	raw, err := os.ReadFile(modelPath(name + ".ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		InputFile  string      `json:"input_file"`
		InputShape []int       `json:"input_shape"`
		Logits     [][]float32 `json:"logits"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("%s.ref.json: %v", name, err)
	}
	b, err := os.ReadFile(modelPath(ref.InputFile))
	if err != nil {
		t.Fatal(err)
	}
	r := reference{n: ref.InputShape[0], per: ref.InputShape[1] * ref.InputShape[2] * ref.InputShape[3],
		logits: ref.Logits}
	if len(b) != 4*r.n*r.per || len(ref.Logits) != r.n {
		t.Fatalf("%s: %d input bytes and %d logit rows for shape %v", name, len(b), len(ref.Logits), ref.InputShape)
	}
	r.input = make([]float32, r.n*r.per)
	for i := range r.input {
		r.input[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return r
}

// maxDiff compares got (rows×K) with the first rows of want.
func maxDiff(t testing.TB, got []float32, want [][]float32, k int) float64 {
	t.Helper()
	rows := len(got) / k
	if len(got) != rows*k || rows > len(want) {
		t.Fatalf("got %d logits, want a multiple of %d, at most %d rows", len(got), k, len(want))
	}
	d := 0.0
	for i := 0; i < rows; i++ {
		if len(want[i]) != k {
			t.Fatalf("reference row %d has %d logits, model gives %d", i, len(want[i]), k)
		}
		for j := 0; j < k; j++ {
			d = math.Max(d, math.Abs(float64(got[i*k+j]-want[i][j])))
		}
	}
	return d
}

// tolerance for ONNX Runtime against PyTorch on float32: both sum in float32, in different
// orders, over a few hundred terms per output.
const tolerance = 1e-5

func TestOpenDiscovers(t *testing.T) {
	tests := []struct {
		name                   string
		model, output          string
		input, outName         string
		c, h, w, batch, k      int
		metaKeys               []string
		inputString, outString string
	}{
		{name: "dynamic batch with metadata", model: "tiny_regnet.onnx", input: "input", outName: "logits",
			c: 3, h: 32, w: 32, batch: 0, k: 5, metaKeys: []string{schema.KeyClassNames, schema.KeyPreprocess},
			inputString: `"input" float32 [? 3 32 32]`, outString: `"logits" float32 [? 5]`},
		{name: "fixed batch", model: "tiny_regnet_fixed4.onnx", input: "input", outName: "logits",
			c: 3, h: 32, w: 32, batch: 4, k: 5, metaKeys: []string{schema.KeyClassNames, schema.KeyPreprocess},
			inputString: `"input" float32 [4 3 32 32]`, outString: `"logits" float32 [4 5]`},
		{name: "grayscale without metadata", model: "tiny_gray.onnx", input: "input", outName: "logits",
			c: 1, h: 28, w: 28, batch: 0, k: 10, metaKeys: []string{},
			inputString: `"input" float32 [? 1 28 28]`, outString: `"logits" float32 [? 10]`},
		{name: "first 2-D output by default", model: "multi_output.onnx", input: "input", outName: "cls_logits",
			c: 3, h: 32, w: 32, k: 5, metaKeys: []string{},
			inputString: `"input" float32 [? 3 32 32]`, outString: `"cls_logits" float32 [? 5]`},
		{name: "class count found by a run", model: "dynamic_classes.onnx", input: "x", outName: "logits",
			c: 3, h: 32, w: 32, k: 3, metaKeys: []string{},
			inputString: `"x" float32 [? 3 32 32]`, outString: `"logits" float32 [? ?]`},
		{name: "output chosen by name", model: "multi_output.onnx", output: "dist_logits", input: "input",
			outName: "dist_logits", c: 3, h: 32, w: 32, k: 5, metaKeys: []string{},
			inputString: `"input" float32 [? 3 32 32]`, outString: `"dist_logits" float32 [? 5]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := open(t, tt.model, Options{Output: tt.output}).Info()
			got := fmt.Sprintf("%s %s c=%d h=%d w=%d batch=%d k=%d size=%d provider=%s", in.Input.Name, in.Output.Name,
				in.Channels, in.Height, in.Width, in.FixedBatch, in.NumClasses, in.ImageSize(), in.Provider)
			want := fmt.Sprintf("%s %s c=%d h=%d w=%d batch=%d k=%d size=%d provider=cpu", tt.input, tt.outName,
				tt.c, tt.h, tt.w, tt.batch, tt.k, tt.c*tt.h*tt.w)
			if got != want {
				t.Errorf("Info:\n got %s\nwant %s", got, want)
			}
			if s := in.Input.String(); s != tt.inputString {
				t.Errorf("input %s, want %s", s, tt.inputString)
			}
			if s := in.Output.String(); s != tt.outString {
				t.Errorf("output %s, want %s", s, tt.outString)
			}
			if keys := strings.Join(slices.Sorted(maps.Keys(in.Metadata)), ","); keys != strings.Join(tt.metaKeys, ",") {
				t.Errorf("metadata keys %q, want %q", keys, tt.metaKeys)
			}
			if len(in.SHA256) != 64 || in.Library.Version == "" || in.Path != modelPath(tt.model) {
				t.Errorf("sha256 %q, library %+v, path %q", in.SHA256, in.Library, in.Path)
			}
		})
	}
}

func TestOpenSHA256(t *testing.T) {
	// The digest is of the file's bytes, as `sha256sum` prints it; two different files differ.
	a := open(t, "tiny_regnet.onnx", Options{}).Info().SHA256
	b := open(t, "tiny_regnet_fixed4.onnx", Options{}).Info().SHA256
	want, err := filehash.SHA256(modelPath("tiny_regnet.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if a != want || a == b {
		t.Errorf("sha256 %s (want %s), fixed4 %s", a, want, b)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name, model, output string
		reason              string   // part of the message saying what is wrong
		signature           []string // every input and output as listed
	}{
		{name: "int64 input", model: "wrong_int64_input.onnx", reason: `input "ids" is int64, want float32`,
			signature: []string{`"ids" int64 [? 3 32 32]`, `"logits" float32 [? 3]`}},
		{name: "3-D input", model: "wrong_3d_input.onnx", reason: `input "seq" has 3 dimensions, want 4`,
			signature: []string{`"seq" float32 [? 3 1024]`, `"logits" float32 [? 3]`}},
		{name: "3-D output", model: "wrong_3d_output.onnx", reason: "no 2-D float32 output",
			signature: []string{`"input" float32 [? 3 32 32]`, `"map" float32 [? 3 1024]`}},
		{name: "two inputs", model: "wrong_two_inputs.onnx", reason: "it has 2 inputs, want exactly one",
			signature: []string{`"image" float32 [? 3 32 32]`, `"mask" float32 [? 3 32 32]`, `"logits" float32 [? 3]`}},
		{name: "dynamic height and width", model: "wrong_dynamic_hw.onnx",
			reason: `height dynamic and width dynamic, want both fixed`, signature: []string{`"x" float32 [? 3 ? ?]`}},
		{name: "four channels", model: "wrong_4_channels.onnx", reason: "has 4 channels, want 1 or 3",
			signature: []string{`"x" float32 [? 4 32 32]`, `"logits" float32 [? 4]`}},
		{name: "output name not there", model: "multi_output.onnx", output: "teacher_logits",
			reason:    `no output named "teacher_logits"`,
			signature: []string{`"cls_logits" float32 [? 5]`, `"dist_logits" float32 [? 5]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Open(modelPath(tt.model), Options{Output: tt.output})
			if err == nil {
				m.Close()
				t.Fatal("Open accepted it")
			}
			if !errors.Is(err, ErrUnsupportedModel) {
				t.Fatalf("error %v is not ErrUnsupportedModel", err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range append([]string{modelPath(tt.model), tt.reason, "inputs:", "outputs:"}, tt.signature...) {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole, err := os.ReadFile(modelPath("tiny_gray.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	empty, text, cut := write("empty.onnx", nil), write("text.onnx", []byte("hello\n")), write("cut.onnx", whole[:len(whole)/2])
	tests := []struct{ name, path, want string }{
		{"missing", modelPath("no_such_model.onnx"), "no_such_model.onnx: no such file"},
		{"empty", empty, "teacher: model " + empty + " is empty"},
		{"text", text, "teacher: model " + text + " is not an ONNX model (it starts with 68 65 6c 6c 6f 0a"},
		{"JSON", modelPath("tiny_regnet.ref.json"), "teacher: model " + modelPath("tiny_regnet.ref.json") + " is not an ONNX model"},
		{"truncated", cut, "teacher: model " + cut + " is not a readable ONNX model: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Open(tt.path, Options{})
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestRunMatchesReference(t *testing.T) {
	regnet := readReference(t, "tiny_regnet")
	gray := readReference(t, "tiny_gray")
	tests := []struct {
		name, model string
		ref         reference
		n           int
	}{
		{"regnet dynamic n=7", "tiny_regnet.onnx", regnet, 7},
		{"regnet dynamic n=1", "tiny_regnet.onnx", regnet, 1},
		// Fixed batch 4: n=1 and 3 are one padded batch, 4 is exact, 7 is a full batch and a
		// padded one.
		{"regnet fixed4 n=1", "tiny_regnet_fixed4.onnx", regnet, 1},
		{"regnet fixed4 n=3", "tiny_regnet_fixed4.onnx", regnet, 3},
		{"regnet fixed4 n=4", "tiny_regnet_fixed4.onnx", regnet, 4},
		{"regnet fixed4 n=7", "tiny_regnet_fixed4.onnx", regnet, 7},
		{"gray n=3", "tiny_gray.onnx", gray, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := open(t, tt.model, Options{Threads: 1})
			input := append([]float32(nil), tt.ref.input[:tt.n*tt.ref.per]...)
			got, err := m.Run(input, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			k := m.Info().NumClasses
			if len(got) != tt.n*k {
				t.Fatalf("%d logits, want %d", len(got), tt.n*k)
			}
			d := maxDiff(t, got, tt.ref.logits, k)
			if d > tolerance {
				t.Errorf("max |ONNX Runtime - PyTorch| = %g > %g", d, tolerance)
			}
			t.Logf("max |ONNX Runtime - PyTorch| = %.2g", d)
			for i := range input {
				if input[i] != tt.ref.input[i] {
					t.Fatalf("Run modified its input at %d", i)
				}
			}
		})
	}
}

func TestRunDynamicClasses(t *testing.T) {
	// dynamic_classes.onnx returns the mean of each channel: K = 3, known only by running it.
	m := open(t, "dynamic_classes.onnx", Options{})
	in := make([]float32, 2*3*32*32)
	for i := range in {
		in[i] = float32(i / (32 * 32)) // image 0: channels 0, 1, 2; image 1: 3, 4, 5
	}
	got, err := m.Run(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5]" {
		t.Errorf("got %v", got)
	}
}

func TestRunOutputsDiffer(t *testing.T) {
	// --output must really switch the tensor read: the two heads have different weights.
	ref := readReference(t, "tiny_regnet")
	cls, err := open(t, "multi_output.onnx", Options{}).Run(ref.input[:2*ref.per], 2)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := open(t, "multi_output.onnx", Options{Output: "dist_logits"}).Run(ref.input[:2*ref.per], 2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cls) == fmt.Sprint(dist) {
		t.Errorf("cls_logits and dist_logits came out equal: %v", cls)
	}
}

func TestRunBadInput(t *testing.T) {
	m := open(t, "tiny_gray.onnx", Options{})
	per := m.Info().ImageSize()
	tests := []struct {
		name string
		len  int
		n    int
	}{
		{"one value short", 2*per - 1, 2},
		{"one image too many", 3 * per, 2},
		{"negative n", 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Run(make([]float32, tt.len), tt.n); !errors.Is(err, ErrInput) {
				t.Errorf("error %v, want ErrInput", err)
			}
		})
	}
	t.Run("zero images", func(t *testing.T) {
		got, err := m.Run(nil, 0)
		if err != nil || len(got) != 0 {
			t.Errorf("Run(nil, 0) = %v, %v", got, err)
		}
	})
}

func TestRunConcurrent(t *testing.T) {
	ref := readReference(t, "tiny_regnet")
	for _, model := range []string{"tiny_regnet.onnx", "tiny_regnet_fixed4.onnx"} {
		t.Run(model, func(t *testing.T) {
			m := open(t, model, Options{Threads: 1})
			k := m.Info().NumClasses
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for it := range 5 {
						n := 1 + (g+it)%ref.n // different batch sizes at once: padded and not
						got, err := m.Run(ref.input[:n*ref.per], n)
						if err != nil {
							errs <- err
							return
						}
						if d := maxDiff(t, got, ref.logits, k); d > tolerance {
							errs <- fmt.Errorf("goroutine %d run %d (n=%d): max diff %g", g, it, n, d)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	m, err := Open(modelPath("tiny_gray.onnx"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Run(make([]float32, 28*28), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

func TestFailedOpenReleases(t *testing.T) {
	// Every failed Open gives back its hold on the environment, or Shutdown would refuse forever.
	count := func() int {
		env.mu.Lock()
		defer env.mu.Unlock()
		return env.open
	}
	before := count()
	for _, tt := range []struct {
		name, model string
		opts        Options
	}{
		{"refused model", "wrong_3d_input.onnx", Options{}},
		{"missing file", "missing.onnx", Options{}},
		{"not ONNX", "tiny_regnet.ref.json", Options{}},
		{"CUDA without fallback", "tiny_gray.onnx", Options{Provider: "cuda", NoFallback: true}},
	} {
		if m, err := Open(modelPath(tt.model), tt.opts); err == nil {
			m.Close()
			if tt.opts.Provider == "cuda" {
				continue // a CUDA build with a GPU: nothing failed
			}
			t.Errorf("%s: Open succeeded", tt.name)
		}
		if got := count(); got != before {
			t.Errorf("%s: %d holds on the environment, want %d", tt.name, got, before)
		}
	}
}
