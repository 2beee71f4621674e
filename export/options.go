package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/student"
)

// Sentinel errors of the package.
var (
	// ErrOptions reports an Options value that does not fit the model.
	ErrOptions = errors.New("export: bad option")
	// ErrSafetensors reports bytes that are not a safetensors file this package can read.
	ErrSafetensors = errors.New("export: not a valid safetensors file")
)

// Formats WriteFile knows, and the file name each gets in the folder.
const (
	FormatONNX        = "onnx"
	FormatSafetensors = "safetensors"

	ONNXFile        = "student.onnx"
	SafetensorsFile = "student.safetensors"
)

// Metadata keys written into the ONNX metadata_props and the safetensors __metadata__, with
// schema.KeyPreprocess (a dataset.Config as JSON) and schema.KeyClassNames (a JSON array of
// strings, class index order): the keys and JSON formats a label store records and
// schema.ModelMetadata reads from a teacher model, so an exported student runs as a teacher
// with its own preprocessing.
const (
	MetaConfig = "deitkd.student_config"
	MetaFuse   = "deitkd.fuse"
)

// Options says what goes into an export besides the weights. The zero value fuses the
// probabilities and writes the preprocessing and class names the model records (those of its
// checkpoint, student.Model.Preprocess and ClassNames), if any.
type Options struct {
	// Fuse is the fusion of the two heads in the ONNX output "fused", as student.Model.Eval
	// defines it: student.FuseProbs (the default when empty) or student.FuseLogits. MetaFuse
	// records it in the export's own words (fuseWord).
	Fuse student.Fuse
	// Preprocess is the eval transform the student was trained on; nil: the model's
	// record, or none. Its Channels and Crop must match the model's when given.
	Preprocess *dataset.Config
	// ClassNames names the classes in index order: one distinct, non-empty name per class;
	// nil: the model's record, or none.
	ClassNames []string
	// Producer is written as the ONNX producer_version (e.g. the build's version); may be
	// empty.
	Producer string
}

// check fills the defaults from m and refuses what does not fit it.
func (o *Options) check(m *student.Model) error {
	c := m.Config()
	if o.Preprocess == nil {
		o.Preprocess = m.Preprocess()
	}
	if o.ClassNames == nil {
		o.ClassNames = m.ClassNames()
	}
	switch o.Fuse {
	case "":
		o.Fuse = student.FuseProbs
	case student.FuseProbs, student.FuseLogits:
	default:
		return fmt.Errorf("%w: fuse %q (want %s or %s)", ErrOptions, o.Fuse, student.FuseProbs, student.FuseLogits)
	}
	if o.ClassNames != nil {
		if len(o.ClassNames) != c.Classes {
			return fmt.Errorf("%w: %d class names for %d classes", ErrOptions, len(o.ClassNames), c.Classes)
		}
		seen := make(map[string]int, len(o.ClassNames))
		for i, n := range o.ClassNames {
			if n == "" {
				return fmt.Errorf("%w: class %d has an empty name", ErrOptions, i)
			}
			if j, dup := seen[n]; dup {
				return fmt.Errorf("%w: classes %d and %d are both named %q", ErrOptions, j, i, n)
			}
			seen[n] = i
		}
	}
	if p := o.Preprocess; p != nil {
		switch {
		case p.Channels != 0 && p.Channels != c.Channels:
			return fmt.Errorf("%w: preprocess has %d channels, the model %d", ErrOptions, p.Channels, c.Channels)
		case p.Crop != 0 && p.Crop != c.ImageSize:
			return fmt.Errorf("%w: preprocess crops %d pixels, the model takes %d", ErrOptions, p.Crop, c.ImageSize)
		case len(p.Mean) != len(p.Std):
			return fmt.Errorf("%w: preprocess has %d means and %d stds", ErrOptions, len(p.Mean), len(p.Std))
		case len(p.Mean) != 0 && len(p.Mean) != c.Channels:
			return fmt.Errorf("%w: preprocess has %d means for %d channels", ErrOptions, len(p.Mean), c.Channels)
		}
		for i, s := range p.Std {
			if !(s > 0) || math.IsInf(s, 0) || math.IsNaN(p.Mean[i]) || math.IsInf(p.Mean[i], 0) {
				return fmt.Errorf("%w: preprocess mean[%d] %v, std[%d] %v", ErrOptions, i, p.Mean[i], i, s)
			}
		}
	}
	return nil
}

// metadata is the key-value metadata both formats carry, in a fixed order.
func (o *Options) metadata(c student.Config) ([][2]string, error) {
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("export: encode config: %w", err)
	}
	md := [][2]string{{MetaConfig, string(cfg)}, {MetaFuse, fuseWord(o.Fuse)}}
	if o.Preprocess != nil {
		b, err := json.Marshal(o.Preprocess)
		if err != nil {
			return nil, fmt.Errorf("export: encode preprocess: %w", err)
		}
		md = append(md, [2]string{schema.KeyPreprocess, string(b)})
	}
	if o.ClassNames != nil {
		b, err := json.Marshal(o.ClassNames)
		if err != nil {
			return nil, fmt.Errorf("export: encode class names: %w", err)
		}
		md = append(md, [2]string{schema.KeyClassNames, string(b)})
	}
	return md, nil
}

// fuseWord is MetaFuse's word for f: "softmax" for student.FuseProbs, as every export has
// recorded it (files already written and the committed fixture keep their meaning), and
// "logits" for student.FuseLogits. The one place the two spellings meet.
func fuseWord(f student.Fuse) string {
	if f == student.FuseLogits {
		return "logits"
	}
	return "softmax"
}
