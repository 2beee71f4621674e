package traindata

import (
	"fmt"
	"math"
	"slices"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
)

// ExportPreprocess is the eval transform of a student with input side size trained on a label
// store of metadata md, as an export embeds it: the store's interpolation and channels, its
// mean and std with one value per channel (dataset's defaults where the store leaves them
// out), and its resize and crop scaled to size — exactly the store's when the sizes agree;
// otherwise Resize(R·S/C) + CenterCrop(S) is the nearest torchvision transform to rendering
// view 0's box at S. An export carries it so the student can be run, or used as a teacher, as
// it was trained.
//
// It is the one place this transform is built: train records it in the checkpoint (through
// Set.Preprocess), and export --labels builds it again from the store and checks it against
// that record (FitExport), so train --export and export write the same preprocessing.
func ExportPreprocess(md schema.Metadata, size int) (dataset.Config, error) {
	p := md.Preprocess
	c := dataset.Config{Resize: p.Resize, Crop: p.Crop, Interpolation: p.Interpolation, Channels: p.Channels}
	if len(p.Mean) > 0 || len(p.Std) > 0 { // none at all: dataset's defaults
		c.Mean, c.Std = p.Mean, p.Std
	}
	cfg, err := c.Defaults()
	if err != nil {
		return dataset.Config{}, fmt.Errorf("%w: %s: %w", ErrMismatch, schema.KeyPreprocess, err)
	}
	if size <= 0 {
		return dataset.Config{}, fmt.Errorf("%w: student input side %d", ErrOptions, size)
	}
	out := dataset.Config{Resize: cfg.Resize, Crop: cfg.Crop, Interpolation: cfg.Interpolation, Channels: cfg.Channels,
		EXIFTranspose: p.EXIFTranspose} // the student, too, expects upright images
	if size != cfg.Crop {
		out.Crop = size
		out.Resize = int(math.Round(float64(cfg.Resize) * float64(size) / float64(cfg.Crop)))
	}
	// The store's own float64 values (or dataset's defaults where it leaves them out), one per
	// channel: the export writes the numbers the store wrote.
	out.Mean, out.Std = slices.Clone(cfg.Mean), slices.Clone(cfg.Std)
	return out, nil
}

// Trained is what a student's checkpoint says of the data it was trained on.
type Trained struct {
	// Size, Channels and Classes are the student's input side, input channels and class
	// count: its architecture, known for every checkpoint.
	Size, Channels, Classes int
	// Preprocess is the ExportPreprocess the checkpoint records, and ClassNames the store's
	// class names recorded with it; Preprocess is nil for a checkpoint that records neither
	// (written before checkpoints recorded them, or not by train).
	Preprocess *dataset.Config
	ClassNames []string
}

// FitExport returns the preprocessing an export of the student t takes from a label store of
// metadata md (ExportPreprocess at t.Size), refusing a store the student was not trained on
// with ErrMismatch naming the first differing key and both values: the class count and the
// channels always; where t records them, every field of the preprocessing (mean and std
// compared per channel in float32, the precision pixels are normalised in) and the class
// names.
func FitExport(md schema.Metadata, t Trained) (dataset.Config, error) {
	field := func(name string) string { return schema.KeyPreprocess + "." + name }
	differ := func(key string, store, ckpt any) error {
		return fmt.Errorf("%w: %s: store has %v, checkpoint has %v", ErrMismatch, key, store, ckpt)
	}
	if md.NumClasses != t.Classes {
		return dataset.Config{}, differ(schema.KeyNumClasses, md.NumClasses, t.Classes)
	}
	p, err := ExportPreprocess(md, t.Size)
	if err != nil {
		return dataset.Config{}, err
	}
	if p.Channels != t.Channels {
		return dataset.Config{}, differ(field("channels"), p.Channels, t.Channels)
	}
	r := t.Preprocess
	if r == nil {
		return p, nil
	}
	for _, f := range []struct {
		name        string
		store, ckpt []float64
	}{{"mean", p.Mean, r.Mean}, {"std", p.Std, r.Std}} {
		if !sameNorm(f.store, f.ckpt, p.Channels) {
			return dataset.Config{}, differ(field(f.name), f.store, f.ckpt)
		}
	}
	switch {
	case p.Resize != r.Resize:
		return dataset.Config{}, differ(field("resize"), p.Resize, r.Resize)
	case p.Crop != r.Crop:
		return dataset.Config{}, differ(field("crop"), p.Crop, r.Crop)
	case p.Interpolation != r.Interpolation:
		return dataset.Config{}, differ(field("interpolation"), p.Interpolation, r.Interpolation)
	case !slices.Equal(md.ClassNames, t.ClassNames):
		names := func(n []string) string {
			if len(n) == 0 {
				return "none"
			}
			return fmt.Sprintf("%q", n)
		}
		return dataset.Config{}, differ(schema.KeyClassNames, names(md.ClassNames), names(t.ClassNames))
	}
	return p, nil
}
