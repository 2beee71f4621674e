package teacher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Keys of the ONNX metadata_props deitkd reads from a teacher model (written by
// teacher/export and scripts/make_test_models.py).
const (
	// MetaPreprocess holds a JSON object: {"resize":R,"crop":S,"interpolation":"bilinear",
	// "mean":[...],"std":[...],"channels":C}.
	MetaPreprocess = "deitkd.preprocess"
	// MetaClassNames holds a JSON array of strings, class index order.
	MetaClassNames = "deitkd.class_names"
)

// ErrMetadata reports a deitkd metadata value that cannot be used as it stands.
var ErrMetadata = errors.New("teacher: bad model metadata")

// maxSide bounds resize and crop: larger is a typo, not an image size (and would make the
// caller allocate absurd buffers).
const maxSide = 1 << 16

// Preprocess is the eval transform a model says it expects, as torchvision would run it:
// resize the shorter side to Resize, centre-crop Crop, scale to [0,1], normalise by Mean/Std.
// A zero value (0, "" or nil) means the model does not say, and the caller's flags or
// defaults decide.
type Preprocess struct {
	Resize        int       `json:"resize"`
	Crop          int       `json:"crop"`
	Interpolation string    `json:"interpolation"` // "bilinear" or "bicubic"
	Mean          []float64 `json:"mean"`          // one per channel
	Std           []float64 `json:"std"`           // one per channel
	Channels      int       `json:"channels"`      // 1 or 3
}

// PreprocessFromMetadata reads MetaPreprocess and MetaClassNames from a model's metadata (as
// Info.Metadata holds it). ok reports whether MetaPreprocess is present; classNames is nil
// when MetaClassNames is absent. A model without either is fine. A value present but
// malformed (bad JSON, an unknown field, an impossible number) is an error naming the key.
func PreprocessFromMetadata(md map[string]string) (p Preprocess, classNames []string, ok bool, err error) {
	if v, present := md[MetaPreprocess]; present {
		if p, err = parsePreprocess(v); err != nil {
			return Preprocess{}, nil, false, fmt.Errorf("%w: %s: %v", ErrMetadata, MetaPreprocess, err)
		}
		ok = true
	}
	if v, present := md[MetaClassNames]; present {
		if classNames, err = parseClassNames(v); err != nil {
			return Preprocess{}, nil, false, fmt.Errorf("%w: %s: %v", ErrMetadata, MetaClassNames, err)
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

func parsePreprocess(s string) (Preprocess, error) {
	var p Preprocess
	if err := decodeStrict(s, '{', &p); err != nil {
		return Preprocess{}, err
	}
	switch {
	case p.Resize < 0 || p.Resize > maxSide:
		return Preprocess{}, fmt.Errorf("resize %d out of range [0, %d]", p.Resize, maxSide)
	case p.Crop < 0 || p.Crop > maxSide:
		return Preprocess{}, fmt.Errorf("crop %d out of range [0, %d]", p.Crop, maxSide)
	}
	switch p.Interpolation {
	case "", "bilinear", "bicubic":
	default:
		return Preprocess{}, fmt.Errorf("interpolation %q (want bilinear or bicubic)", p.Interpolation)
	}
	switch p.Channels {
	case 0, 1, 3:
	default:
		return Preprocess{}, fmt.Errorf("channels %d (want 1 or 3)", p.Channels)
	}
	for _, f := range []struct {
		name string
		v    []float64
	}{{"mean", p.Mean}, {"std", p.Std}} {
		switch {
		case p.Channels > 0 && f.v != nil && len(f.v) != p.Channels:
			return Preprocess{}, fmt.Errorf("%s has %d values for %d channels", f.name, len(f.v), p.Channels)
		case p.Channels == 0 && f.v != nil && len(f.v) != 1 && len(f.v) != 3:
			return Preprocess{}, fmt.Errorf("%s has %d values (want 1 or 3)", f.name, len(f.v))
		}
		for i, x := range f.v {
			if math.IsNaN(x) || math.IsInf(x, 0) || (f.name == "std" && x <= 0) {
				return Preprocess{}, fmt.Errorf("%s[%d] = %v", f.name, i, x)
			}
		}
	}
	if p.Mean != nil && p.Std != nil && len(p.Mean) != len(p.Std) {
		return Preprocess{}, fmt.Errorf("mean has %d values but std %d", len(p.Mean), len(p.Std))
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
