package teacher

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCUDAProviderOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // the map as fmt prints it (sorted keys), or "" for an error
	}{
		{name: "defaults", opts: Options{}, want: "map[device_id:0]"},
		{name: "device, search and memory", opts: Options{Device: 2, CUDNNConvAlgoSearch: "heuristic", GPUMemLimit: 8 << 30},
			want: "map[cudnn_conv_algo_search:HEURISTIC device_id:2 gpu_mem_limit:8589934592]"},
		{name: "exhaustive", opts: Options{CUDNNConvAlgoSearch: "EXHAUSTIVE"}, want: "map[cudnn_conv_algo_search:EXHAUSTIVE device_id:0]"},
		{name: "default search", opts: Options{Device: 1, CUDNNConvAlgoSearch: "Default"}, want: "map[cudnn_conv_algo_search:DEFAULT device_id:1]"},
		{name: "unknown search", opts: Options{CUDNNConvAlgoSearch: "fastest"}},
		{name: "negative device", opts: Options{Device: -1}},
		{name: "negative memory limit", opts: Options{GPUMemLimit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := cudaProviderOptions(tt.opts)
			if tt.want == "" {
				if !errors.Is(err, ErrOptions) {
					t.Errorf("got %v, %v; want ErrOptions", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(m); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	// Usage errors are errors on any machine, before any library or model is touched: never a
	// reason to fall back to CPU.
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"unknown provider", Options{Provider: "tpu"}, `provider "tpu"`},
		{"negative threads", Options{Threads: -2}, "threads -2"},
		{"cuda with a bad search", Options{Provider: "cuda", CUDNNConvAlgoSearch: "quick"}, `cuDNN algorithm search "quick"`},
		{"cuda with a negative device", Options{Provider: "CUDA", Device: -3}, "CUDA device -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Open(modelPath("tiny_gray.onnx"), tt.opts)
			if err == nil {
				m.Close()
				t.Fatal("Open accepted it")
			}
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrOptions naming %q", err, tt.want)
			}
		})
	}
}

// steps lists every place a CUDA start can fail; the warning and the error must name one.
var steps = []string{stepCUDAOptions, stepCUDAUpdate, stepCUDAAppend, stepCUDASession}

func namesStep(msg string) bool {
	for _, s := range steps {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// The library `make setup` installs is ONNX Runtime's CPU build: CUDA cannot start, which is
// exactly the fallback path. On a CUDA build with a GPU these tests would see CUDA run, so
// they skip then, saying so.
func TestCUDAFallback(t *testing.T) {
	var warnings []string
	m := open(t, "tiny_regnet.onnx", Options{Provider: "cuda", Device: 0, CUDNNConvAlgoSearch: "HEURISTIC",
		Warn: func(s string) { warnings = append(warnings, s) }})
	in := m.Info()
	if in.Provider == ProviderCUDA {
		t.Skipf("CUDA started (library %s): no fallback to test", in.Library.Path)
	}
	if in.Provider != ProviderCPU {
		t.Errorf("provider %q, want cpu after the fallback", in.Provider)
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want exactly one: %q", len(warnings), warnings)
	}
	w := warnings[0]
	t.Log(w)
	if !namesStep(w) || !strings.Contains(w, "running on CPU") || !strings.Contains(w, "tiny_regnet.onnx") ||
		!strings.Contains(w, "device 0") || strings.Contains(w, "\n") || strings.Contains(w, "[ONNXRuntimeError]") {
		t.Errorf("warning %q should be one line naming the model, the device, the failed step (one of %q) and the CPU run", w, steps)
	}
	// And the CPU session it fell back to works.
	ref := readReference(t, "tiny_regnet")
	got, err := m.Run(ref.input, ref.n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, got, ref.logits, in.NumClasses); d > tolerance {
		t.Errorf("max diff %g after fallback", d)
	}
}

func TestCUDANoFallback(t *testing.T) {
	warned := 0
	m, err := Open(modelPath("tiny_regnet.onnx"), Options{Provider: "cuda", Device: 1, NoFallback: true,
		Warn: func(string) { warned++ }})
	if err == nil {
		defer m.Close()
		if m.Info().Provider == ProviderCUDA {
			t.Skip("CUDA started: no failure to test")
		}
		t.Fatalf("Open with NoFallback ran on %s", m.Info().Provider)
	}
	t.Log(err)
	if !errors.Is(err, ErrCUDA) || !namesStep(err.Error()) || !strings.Contains(err.Error(), "tiny_regnet.onnx") ||
		!strings.Contains(err.Error(), "device 1") {
		t.Errorf("error %q: want ErrCUDA naming the model, the device and the failed step", err)
	}
	if warned != 0 {
		t.Errorf("%d warnings with NoFallback; the error says it all", warned)
	}
}

func TestCPUIgnoresCUDAOptions(t *testing.T) {
	// A CPU run with CUDA settings left over from a config must neither warn nor fail.
	warned := 0
	in := open(t, "tiny_gray.onnx", Options{Provider: "cpu", Device: 3, GPUMemLimit: 1 << 30, Threads: 1,
		Warn: func(string) { warned++ }}).Info()
	if in.Provider != ProviderCPU || in.Device != 0 || in.Threads != 1 || warned != 0 {
		t.Errorf("provider %q device %d threads %d warnings %d", in.Provider, in.Device, in.Threads, warned)
	}
}
