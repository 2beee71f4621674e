package teacher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/deitkd/deitkd/internal/filehash"
)

var (
	// ErrUnsupportedModel reports a model whose inputs or outputs are not one NCHW float32
	// image input and a 2-D float32 logits output. The message names the file and lists its
	// actual inputs and outputs.
	ErrUnsupportedModel = errors.New("teacher: unsupported model")
	// ErrInput reports a Run input whose length does not match n images of the model's size.
	ErrInput = errors.New("teacher: bad input")
	// ErrClosed reports a Run on a closed Model.
	ErrClosed = errors.New("teacher: model closed")
)

// Tensor describes one declared input or output of a model. Dims holds -1 for a dynamic
// dimension.
type Tensor struct {
	Name  string
	Kind  string  // "tensor", "sequence", "map", ...
	Type  string  // element type of a tensor: "float32", "int64", ...
	Dims  []int64 // shape as declared
	Index int     // position among the model's inputs or outputs
}

// String formats t as `"name" float32 [? 3 224 224]` (? marks a dynamic dimension).
func (t Tensor) String() string {
	if t.Kind != "tensor" {
		return fmt.Sprintf("%q %s", t.Name, t.Kind)
	}
	d := make([]string, len(t.Dims))
	for i, v := range t.Dims {
		if v < 0 {
			d[i] = "?"
		} else {
			d[i] = fmt.Sprint(v)
		}
	}
	return fmt.Sprintf("%q %s [%s]", t.Name, t.Type, strings.Join(d, " "))
}

// Info describes an open Model: what it takes, what it gives, and where it runs.
type Info struct {
	Path   string // the model file as given to Open
	SHA256 string // of the file's bytes, hex

	Input      Tensor // the image input as declared
	Channels   int    // C: 1 or 3
	Height     int    // H
	Width      int    // W
	FixedBatch int    // the declared batch size, or 0 for a dynamic batch
	Output     Tensor // the logits output used
	NumClasses int    // K

	Inputs  []Tensor // every declared input
	Outputs []Tensor // every declared output

	// Metadata is the model's custom metadata (ONNX metadata_props) as written; see
	// schema.ModelMetadata for the keys deitkd reads.
	Metadata map[string]string

	Provider string  // where it runs: "cpu" or "cuda" (after any fallback)
	Device   int     // the CUDA device when Provider is "cuda"
	Threads  int     // intra-op threads asked for; 0 = ONNX Runtime's default
	Library  Library // the ONNX Runtime library
}

// ImageSize is C·H·W, the float32 values one image takes in Run's input.
func (in Info) ImageSize() int { return in.Channels * in.Height * in.Width }

// Model is an open ONNX teacher. Run is safe for concurrent use; Close waits for running
// calls to finish.
type Model struct {
	info    Info
	mu      sync.RWMutex // Run holds it shared, Close exclusively
	session *ort.DynamicAdvancedSession
}

// Open loads the ONNX Runtime library if needed (Options.Library), checks that modelPath has
// one NCHW float32 input (batch fixed or dynamic, C in {1,3}, H and W fixed) and a 2-D float32
// output, and starts a session on the provider Options ask for. A model of any other form is
// refused with ErrUnsupportedModel before anything else happens. When CUDA is asked for but
// cannot start, Open warns once through Options.Warn and runs on CPU, or returns ErrCUDA with
// Options.NoFallback.
func Open(modelPath string, opts Options) (*Model, error) {
	if err := opts.applyDefaults(); err != nil {
		return nil, err
	}
	lib, err := acquire(opts.Library)
	if err != nil {
		return nil, err
	}
	m, err := openModel(modelPath, lib, opts)
	if err != nil {
		release()
		return nil, err
	}
	return m, nil
}

// openModel is Open once the library is held.
func openModel(modelPath string, lib Library, opts Options) (*Model, error) {
	sum, err := filehash.SHA256(modelPath)
	if err != nil {
		return nil, fmt.Errorf("teacher: model: %w", err) // err names the file
	}
	if err := checkONNXStart(modelPath); err != nil {
		return nil, err
	}
	ins, outs, err := discover(modelPath)
	if err != nil {
		return nil, err
	}
	info := Info{Path: modelPath, SHA256: sum, Inputs: ins, Outputs: outs, Library: lib,
		Threads: opts.Threads}
	if err := info.choose(opts.Output); err != nil {
		return nil, err
	}
	session, provider, err := startSession(modelPath, info, opts)
	if err != nil {
		return nil, err
	}
	info.Provider = provider
	if provider == ProviderCUDA {
		info.Device = opts.Device
	}
	m := &Model{info: info, session: session}
	if m.info.Metadata, err = readMetadata(session); err != nil {
		session.Destroy()
		return nil, fmt.Errorf("teacher: read metadata of %s: %w", modelPath, err)
	}
	if m.info.NumClasses <= 0 {
		// K is dynamic in the file: one run on zeros tells it, so the caller can size its
		// outputs (and the store its schema) before the first real batch.
		if err := m.probeClasses(); err != nil {
			session.Destroy()
			return nil, fmt.Errorf("teacher: find the class count of %s: %w", modelPath, err)
		}
	}
	return m, nil
}

// modelProtoFields are the ModelProto fields (onnx.proto) and their wire types: an ONNX file
// is a serialised ModelProto, so its first byte(s) are the tag of one of them (exporters write
// ir_version, field 1, first).
var modelProtoFields = map[protowire.Number]protowire.Type{
	1: protowire.VarintType, 2: protowire.BytesType, 3: protowire.BytesType, 4: protowire.BytesType,
	5: protowire.VarintType, 6: protowire.BytesType, 7: protowire.BytesType, 8: protowire.BytesType,
	14: protowire.BytesType, 20: protowire.BytesType, 25: protowire.BytesType, 26: protowire.BytesType,
}

// checkONNXStart refuses an empty file and one that does not start like a ModelProto before
// ONNX Runtime sees it: its messages for those ("ModelProto does not have a graph", "Protobuf
// parsing failed") name neither the fault nor, for the first, that the file is empty.
func checkONNXStart(modelPath string) error {
	f, err := os.Open(modelPath)
	if err != nil {
		return fmt.Errorf("teacher: model: %w", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return fmt.Errorf("teacher: model: %w", err)
	}
	head = head[:n]
	if n == 0 {
		return fmt.Errorf("teacher: model %s is empty", modelPath)
	}
	num, typ, tagLen := protowire.ConsumeTag(head)
	if want, ok := modelProtoFields[num]; tagLen < 0 || !ok || typ != want {
		return fmt.Errorf("teacher: model %s is not an ONNX model (it starts with % x, not a ModelProto field)", modelPath, head)
	}
	return nil
}

// discover reads the declared inputs and outputs of modelPath.
func discover(modelPath string) (ins, outs []Tensor, err error) {
	// A throw-away session only to read the graph's signature: no optimisation, one thread.
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("teacher: create session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, fmt.Errorf("teacher: create session options: %w", err)
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, fmt.Errorf("teacher: create session options: %w", err)
	}
	oi, oo, err := ort.GetInputOutputInfoWithOptions(modelPath, so)
	if err != nil {
		return nil, nil, fmt.Errorf("teacher: model %s is not a readable ONNX model: %w", modelPath, err)
	}
	return tensors(oi), tensors(oo), nil
}

func tensors(infos []ort.InputOutputInfo) []Tensor {
	ts := make([]Tensor, len(infos))
	for i, in := range infos {
		ts[i] = Tensor{Name: in.Name, Kind: kindName(in.OrtValueType), Index: i}
		if ts[i].Kind == "tensor" {
			ts[i].Type = typeName(in.DataType)
			ts[i].Dims = append([]int64(nil), in.Dimensions...)
		}
	}
	return ts
}

func kindName(t ort.ONNXType) string {
	switch t {
	case ort.ONNXTypeTensor:
		return "tensor"
	case ort.ONNXTypeSparseTensor:
		return "sparse tensor"
	case ort.ONNXTypeSequence:
		return "sequence"
	case ort.ONNXTypeMap:
		return "map"
	case ort.ONNXTypeOptional:
		return "optional"
	case ort.ONNXTypeOpaque:
		return "opaque"
	}
	return "unknown type"
}

func typeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
}

// choose picks the image input and the logits output, or refuses the model.
func (info *Info) choose(wantOutput string) error {
	refuse := func(format string, args ...any) error {
		return &unsupportedError{path: info.Path, reason: fmt.Sprintf(format, args...),
			inputs: info.Inputs, outputs: info.Outputs}
	}
	if len(info.Inputs) != 1 {
		return refuse("it has %d inputs, want exactly one (N×C×H×W float32)", len(info.Inputs))
	}
	in := info.Inputs[0]
	switch {
	case in.Kind != "tensor":
		return refuse("input %q is a %s, want a tensor", in.Name, in.Kind)
	case in.Type != "float32":
		return refuse("input %q is %s, want float32", in.Name, in.Type)
	case len(in.Dims) != 4:
		return refuse("input %q has %d dimensions, want 4 (N×C×H×W)", in.Name, len(in.Dims))
	case in.Dims[0] == 0:
		return refuse("input %q has batch size 0", in.Name)
	case in.Dims[1] != 1 && in.Dims[1] != 3:
		return refuse("input %q has %s channels, want 1 or 3 (NCHW layout)", in.Name, dimString(in.Dims[1]))
	case in.Dims[2] <= 0 || in.Dims[3] <= 0:
		return refuse("input %q has height %s and width %s, want both fixed", in.Name,
			dimString(in.Dims[2]), dimString(in.Dims[3]))
	}
	info.Input = in
	info.Channels, info.Height, info.Width = int(in.Dims[1]), int(in.Dims[2]), int(in.Dims[3])
	if in.Dims[0] > 0 {
		info.FixedBatch = int(in.Dims[0])
	}

	var out *Tensor
	if wantOutput != "" {
		for i := range info.Outputs {
			if info.Outputs[i].Name == wantOutput {
				out = &info.Outputs[i]
				break
			}
		}
		if out == nil {
			return refuse("it has no output named %q", wantOutput)
		}
		if !isLogits(*out) {
			return refuse("output %q is not a 2-D float32 tensor (N×K logits)", wantOutput)
		}
	} else {
		for i := range info.Outputs {
			if isLogits(info.Outputs[i]) {
				out = &info.Outputs[i]
				break
			}
		}
		if out == nil {
			return refuse("it has no 2-D float32 output (N×K logits)")
		}
	}
	if b := out.Dims[0]; b >= 0 && b != in.Dims[0] {
		return refuse("output %q has batch size %d but input %q has %s", out.Name, b, in.Name,
			dimString(in.Dims[0]))
	}
	if out.Dims[1] == 0 {
		return refuse("output %q has 0 classes", out.Name)
	}
	info.Output = *out
	if out.Dims[1] > 0 {
		info.NumClasses = int(out.Dims[1])
	}
	return nil
}

func isLogits(t Tensor) bool {
	return t.Kind == "tensor" && t.Type == "float32" && len(t.Dims) == 2
}

func dimString(d int64) string {
	if d < 0 {
		return "dynamic"
	}
	return fmt.Sprint(d)
}

// unsupportedError is ErrUnsupportedModel with the file, the reason, and the model's signature.
type unsupportedError struct {
	path            string
	reason          string
	inputs, outputs []Tensor
}

func (e *unsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s: %s\n  inputs:", ErrUnsupportedModel, e.path, e.reason)
	list := func(ts []Tensor) {
		if len(ts) == 0 {
			b.WriteString(" none")
		}
		for _, t := range ts {
			b.WriteString("\n    " + t.String())
		}
	}
	list(e.inputs)
	b.WriteString("\n  outputs:")
	list(e.outputs)
	b.WriteString("\n  (? = dynamic; want one N×C×H×W float32 input with C 1 or 3, H and W fixed, and an N×K float32 output)")
	return b.String()
}

func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupportedModel }

// startSession creates the session on the provider asked for, falling back from CUDA to CPU
// as Options say. It returns the provider that runs.
func startSession(modelPath string, info Info, opts Options) (*ort.DynamicAdvancedSession, string, error) {
	create := func(cuda bool) (*ort.DynamicAdvancedSession, error) {
		so, err := newSessionOptions(opts, cuda)
		if err != nil {
			return nil, err
		}
		defer so.Destroy()
		// Only the chosen output is fetched; the others are never copied out.
		s, err := ort.NewDynamicAdvancedSession(modelPath, []string{info.Input.Name},
			[]string{info.Output.Name}, so)
		if err != nil && cuda {
			return nil, &stepError{stepCUDASession, err}
		}
		return s, err
	}
	if opts.Provider == ProviderCUDA {
		s, err := create(true)
		if err == nil {
			return s, ProviderCUDA, nil
		}
		var se *stepError
		if !errors.As(err, &se) {
			// Not a CUDA step: the session options themselves; CPU would fail the same way.
			return nil, "", fmt.Errorf("teacher: start %s: %w", modelPath, err)
		}
		if opts.NoFallback {
			return nil, "", fmt.Errorf("%w: %s (device %d): %s", ErrCUDA, modelPath, opts.Device, cudaReason(err))
		}
		opts.Warn(fallbackWarning(filepath.Base(modelPath), opts.Device, err))
	}
	s, err := create(false)
	if err != nil {
		return nil, "", fmt.Errorf("teacher: start %s: %w", modelPath, err)
	}
	return s, ProviderCPU, nil
}

func readMetadata(s *ort.DynamicAdvancedSession) (map[string]string, error) {
	md, err := s.GetModelMetadata()
	if err != nil {
		return nil, err
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		m[k] = v
	}
	return m, nil
}

// probeClasses learns K from one run on zeros, for models that declare it dynamic.
func (m *Model) probeClasses() error {
	b := max(m.info.FixedBatch, 1)
	shape := ort.NewShape(int64(b), int64(m.info.Channels), int64(m.info.Height), int64(m.info.Width))
	x, err := ort.NewEmptyTensor[float32](shape)
	if err != nil {
		return err
	}
	defer x.Destroy()
	outs := []ort.Value{nil}
	if err := m.session.Run([]ort.Value{x}, outs); err != nil {
		return err
	}
	defer outs[0].Destroy()
	dims := outs[0].GetShape()
	if len(dims) != 2 || dims[1] <= 0 {
		return fmt.Errorf("%w: %s: output %q came out with shape %v, want N×K", ErrUnsupportedModel,
			m.info.Path, m.info.Output.Name, dims)
	}
	m.info.NumClasses = int(dims[1])
	return nil
}

// Info describes the model. The returned value is a copy.
func (m *Model) Info() Info {
	in := m.info
	in.Inputs = append([]Tensor(nil), in.Inputs...)
	in.Outputs = append([]Tensor(nil), in.Outputs...)
	in.Metadata = make(map[string]string, len(m.info.Metadata))
	for k, v := range m.info.Metadata {
		in.Metadata[k] = v
	}
	return in
}

// Run computes the logits of n images. input holds n×C×H×W float32 values (NCHW, row-major);
// the result holds n×K, row i the logits of image i. A fixed-batch model runs in batches of
// its size, the last one padded with zeros (the padding rows are dropped). Run may be called
// from several goroutines at once; input is not modified.
func (m *Model) Run(input []float32, n int) ([]float32, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.session == nil {
		return nil, ErrClosed
	}
	per := m.info.ImageSize()
	if n < 0 || len(input) != n*per {
		return nil, fmt.Errorf("%w: %d values for %d images of %d×%d×%d (want %d)", ErrInput,
			len(input), n, m.info.Channels, m.info.Height, m.info.Width, max(n, 0)*per)
	}
	k := m.info.NumClasses
	out := make([]float32, n*k)
	if n == 0 {
		return out, nil
	}
	b := m.info.FixedBatch
	if b == 0 {
		if err := m.runBatch(input, out, n); err != nil {
			return nil, err
		}
		return out, nil
	}
	for i := 0; i < n; i += b {
		if i+b <= n {
			if err := m.runBatch(input[i*per:(i+b)*per], out[i*k:(i+b)*k], b); err != nil {
				return nil, err
			}
			continue
		}
		// The last, short batch: zeros after the real images, their logits discarded.
		rest := n - i
		padIn := make([]float32, b*per)
		copy(padIn, input[i*per:])
		padOut := make([]float32, b*k)
		if err := m.runBatch(padIn, padOut, b); err != nil {
			return nil, err
		}
		copy(out[i*k:], padOut[:rest*k])
	}
	return out, nil
}

// runBatch runs one batch of b images from in into out (b×K), both owned by the caller.
func (m *Model) runBatch(in, out []float32, b int) error {
	x, err := ort.NewTensor(ort.NewShape(int64(b), int64(m.info.Channels), int64(m.info.Height),
		int64(m.info.Width)), in)
	if err != nil {
		return fmt.Errorf("teacher: run %s: input tensor: %w", m.info.Path, err)
	}
	defer x.Destroy()
	y, err := ort.NewTensor(ort.NewShape(int64(b), int64(m.info.NumClasses)), out)
	if err != nil {
		return fmt.Errorf("teacher: run %s: output tensor: %w", m.info.Path, err)
	}
	defer y.Destroy()
	if err := m.session.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
		return fmt.Errorf("teacher: run %s on %d images: %w", m.info.Path, b, err)
	}
	return nil
}

// Close ends the session, waiting for running calls. Closing twice is harmless.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	release()
	if err != nil {
		return fmt.Errorf("teacher: close %s: %w", m.info.Path, err)
	}
	return nil
}
