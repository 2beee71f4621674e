package teacher

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Execution providers a Model can run on.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
)

var (
	// ErrCUDA reports that the CUDA provider could not start and Options.NoFallback forbade
	// running on CPU instead.
	ErrCUDA = errors.New("teacher: CUDA provider unavailable")
	// ErrOptions reports an Options value that makes no sense (before anything is loaded).
	ErrOptions = errors.New("teacher: bad option")
)

// Options configures Open. The zero value runs on CPU with ONNX Runtime's default threads.
type Options struct {
	// Library is a libonnxruntime.so path given by the user (a --ort-lib flag); empty searches
	// DEITKD_ORT_LIB, then the `make setup` cache (see LoadLibrary).
	Library string
	// Output names the logits output when the model has several; empty takes the first 2-D
	// float32 output.
	Output string

	// Provider is "cpu" (the default when empty) or "cuda".
	Provider string
	// Device is the CUDA device id (ignored on CPU).
	Device int
	// NoFallback makes a CUDA provider that cannot start an error (ErrCUDA) instead of a
	// warning and a CPU run.
	NoFallback bool
	// Threads is ONNX Runtime's intra-op thread count. 0 leaves ONNX Runtime's default (one per
	// physical core); a pipeline that decodes images on the same machine should pass the cores
	// left after decoding.
	Threads int
	// CUDNNConvAlgoSearch is cuDNN's convolution algorithm search: "EXHAUSTIVE" (ONNX
	// Runtime's default: benchmarks every algorithm once per shape), "HEURISTIC" or "DEFAULT".
	// Empty keeps ONNX Runtime's default.
	CUDNNConvAlgoSearch string
	// GPUMemLimit caps the CUDA memory arena in bytes; 0 means no limit.
	GPUMemLimit int64

	// Warn receives the one-line warning when CUDA falls back to CPU. Nil discards it: the
	// caller decides where warnings go (the command prints them to stderr).
	Warn func(string)
}

// Check reports an Options value that makes no sense (ErrOptions) without loading anything, so
// a caller can refuse a bad flag before it reads a model.
func (o Options) Check() error { return o.applyDefaults() }

// applyDefaults checks o and fills its defaults.
func (o *Options) applyDefaults() error {
	o.Provider = strings.ToLower(strings.TrimSpace(o.Provider))
	switch o.Provider {
	case "":
		o.Provider = ProviderCPU
	case ProviderCPU, ProviderCUDA:
	default:
		return fmt.Errorf("%w: provider %q (want cpu or cuda)", ErrOptions, o.Provider)
	}
	if o.Threads < 0 {
		return fmt.Errorf("%w: threads %d (want 0 for the default, or more)", ErrOptions, o.Threads)
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if o.Provider == ProviderCUDA {
		// Checked here, not left to ONNX Runtime: a typo is a usage error on any machine, never a
		// reason to fall back to CPU.
		if _, err := cudaProviderOptions(*o); err != nil {
			return err
		}
	}
	return nil
}

// cudaProviderOptions is the key-value map handed to UpdateCUDAProviderOptions. Keys as ONNX
// Runtime's CUDA execution provider names them.
func cudaProviderOptions(o Options) (map[string]string, error) {
	if o.Device < 0 {
		return nil, fmt.Errorf("%w: CUDA device %d (want 0 or more)", ErrOptions, o.Device)
	}
	m := map[string]string{"device_id": strconv.Itoa(o.Device)}
	if s := o.CUDNNConvAlgoSearch; s != "" {
		switch up := strings.ToUpper(s); up {
		case "EXHAUSTIVE", "HEURISTIC", "DEFAULT":
			m["cudnn_conv_algo_search"] = up
		default:
			return nil, fmt.Errorf("%w: cuDNN algorithm search %q (want EXHAUSTIVE, HEURISTIC or DEFAULT)", ErrOptions, s)
		}
	}
	switch {
	case o.GPUMemLimit < 0:
		return nil, fmt.Errorf("%w: GPU memory limit %d (want 0 for none, or bytes)", ErrOptions, o.GPUMemLimit)
	case o.GPUMemLimit > 0:
		m["gpu_mem_limit"] = strconv.FormatInt(o.GPUMemLimit, 10)
	}
	return m, nil
}

// stepError is a failure on the way to a CUDA session, with the step that failed: CUDA that
// cannot start shows up at different calls depending on what is missing (a CPU-only library
// fails at the options, a missing libcudart at the append, a missing GPU at the session).
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// Steps named in the CUDA fallback warning and in ErrCUDA.
const (
	stepCUDAOptions = "create CUDA provider options"
	stepCUDAUpdate  = "set CUDA provider options"
	stepCUDAAppend  = "add the CUDA provider to the session"
	stepCUDASession = "start the session on CUDA"
)

// newSessionOptions makes ONNX Runtime session options for o, with the CUDA provider appended
// when cuda is true. The caller destroys the result.
func newSessionOptions(o Options, cuda bool) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create session options: %w", err)
	}
	if o.Threads > 0 {
		if err := so.SetIntraOpNumThreads(o.Threads); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("set %d intra-op threads: %w", o.Threads, err)
		}
	}
	if !cuda {
		return so, nil
	}
	if err := appendCUDA(so, o); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

// appendCUDA adds the CUDA provider configured by o, or says which step failed (*stepError).
func appendCUDA(so *ort.SessionOptions, o Options) error {
	m, err := cudaProviderOptions(o)
	if err != nil {
		return err
	}
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return &stepError{stepCUDAOptions, err}
	}
	defer co.Destroy()
	if err := co.Update(m); err != nil {
		return &stepError{stepCUDAUpdate, err}
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return &stepError{stepCUDAAppend, err}
	}
	return nil
}

// fallbackWarning is the one line a caller prints when CUDA could not start.
func fallbackWarning(model string, device int, err error) string {
	return fmt.Sprintf("teacher: CUDA device %d unavailable for %s (%s); running on CPU instead",
		device, model, cudaReason(err))
}

// ortPrefix is the source location and status code ONNX Runtime puts before its messages
// ("/onnxruntime_src/.../provider_bridge_ort.cc:1952 onnxruntime::Provider& ...Get()
// [ONNXRuntimeError] : 1 : FAIL : "): noise to a user.
var ortPrefix = regexp.MustCompile(`\S+\.(cc|cpp|h):\d+ [^\[]*\[ONNXRuntimeError\] : \d+ : \w+ : `)

// cudaReason is err on one line, without ONNX Runtime's source locations, with a hint when the
// library is a CPU-only build (its CUDA provider libraries are missing beside it).
func cudaReason(err error) string {
	msg := strings.Join(strings.Fields(ortPrefix.ReplaceAllString(err.Error(), "")), " ")
	if strings.Contains(msg, "libonnxruntime_providers_") && strings.Contains(msg, "cannot open shared object") {
		msg += "; this ONNX Runtime library has no CUDA provider beside it: use a CUDA build"
	}
	return msg
}
