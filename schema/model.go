package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/deitkd/deitkd/dataset"
)

// maxSide bounds a model's resize and crop: larger is a typo, not an image size (and would
// make the caller allocate absurd buffers).
const maxSide = 1 << 16

// ModelMetadata reads KeyPreprocess and KeyClassNames from a model's metadata: the ONNX
// metadata_props of a teacher (teacher.Info.Metadata) or of an exported student, which carry
// the same keys and JSON as a label store. ok reports whether KeyPreprocess is present; a
// field it leaves out (0, "" or nil) means the model does not say, and the caller's options
// or dataset's defaults decide (precompute takes Draft and EXIFTranspose, how its own images
// are decoded, from its options alone). classNames is nil when KeyClassNames is absent. A model
// without either is fine. A value present but malformed (bad JSON, an unknown field, an
// impossible number) is an error wrapping ErrMetadata naming the key.
func ModelMetadata(md map[string]string) (p dataset.Config, classNames []string, ok bool, err error) {
	if v, present := md[KeyPreprocess]; present {
		if p, err = parsePreprocess(v); err != nil {
			return dataset.Config{}, nil, false, fmt.Errorf("%w: %s: %v", ErrMetadata, KeyPreprocess, err)
		}
		ok = true
	}
	if v, present := md[KeyClassNames]; present {
		if classNames, err = parseClassNames(v); err != nil {
			return dataset.Config{}, nil, false, fmt.Errorf("%w: %s: %v", ErrMetadata, KeyClassNames, err)
		}
	}
	return p, classNames, ok, nil
}

// decodeStrict decodes exactly one JSON value of the kind open ('{' or '[') into v, refusing
// unknown fields (a misspelt key must not silently fall back to a default) and trailing data.
func decodeStrict(s string, open byte, v any) error {
	t := strings.TrimSpace(s)
	if t == "" || t[0] != open {
		want := "an object"
		if open == '[' {
			want = "an array"
		}
		return fmt.Errorf("want %s, got %.40q", want, t)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(t)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func parsePreprocess(s string) (dataset.Config, error) {
	var p dataset.Config
	if err := decodeStrict(s, '{', &p); err != nil {
		return dataset.Config{}, err
	}
	switch {
	case p.Resize < 0 || p.Resize > maxSide:
		return dataset.Config{}, fmt.Errorf("resize %d out of range [0, %d]", p.Resize, maxSide)
	case p.Crop < 0 || p.Crop > maxSide:
		return dataset.Config{}, fmt.Errorf("crop %d out of range [0, %d]", p.Crop, maxSide)
	}
	switch p.Interpolation {
	case "", "bilinear", "bicubic":
	default:
		return dataset.Config{}, fmt.Errorf("interpolation %q (want bilinear or bicubic)", p.Interpolation)
	}
	switch p.Channels {
	case 0, 1, 3:
	default:
		return dataset.Config{}, fmt.Errorf("channels %d (want 1 or 3)", p.Channels)
	}
	for _, f := range []struct {
		name string
		v    []float64
	}{{"mean", p.Mean}, {"std", p.Std}} {
		switch {
		case p.Channels > 0 && f.v != nil && len(f.v) != p.Channels:
			return dataset.Config{}, fmt.Errorf("%s has %d values for %d channels", f.name, len(f.v), p.Channels)
		case p.Channels == 0 && f.v != nil && len(f.v) != 1 && len(f.v) != 3:
			return dataset.Config{}, fmt.Errorf("%s has %d values (want 1 or 3)", f.name, len(f.v))
		}
		for i, x := range f.v {
			if math.IsNaN(x) || math.IsInf(x, 0) || (f.name == "std" && x <= 0) {
				return dataset.Config{}, fmt.Errorf("%s[%d] = %v", f.name, i, x)
			}
		}
	}
	if p.Mean != nil && p.Std != nil && len(p.Mean) != len(p.Std) {
		return dataset.Config{}, fmt.Errorf("mean has %d values but std %d", len(p.Mean), len(p.Std))
	}
	return p, nil
}

func parseClassNames(s string) ([]string, error) {
	var names []string
	if err := decodeStrict(s, '[', &names); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("empty list")
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("class %d has an empty name", i)
		}
		if j, dup := seen[n]; dup {
			return nil, fmt.Errorf("classes %d and %d are both named %q", j, i, n)
		}
		seen[n] = i
	}
	return names, nil
}
