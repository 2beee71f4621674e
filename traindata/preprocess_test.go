package traindata_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/traindata"
)

func TestExportPreprocess(t *testing.T) {
	store := func(p dataset.Config) schema.Metadata { return schema.Metadata{NumClasses: 10, Preprocess: p} }
	fm := dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
	for _, tc := range []struct {
		name  string
		store dataset.Config
		size  int
		want  dataset.Config
	}{
		{"the store's size", fm, 28, fm},
		{"a bigger student", fm, 32, dataset.Config{Resize: 32, Crop: 32, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}},
		{"resize scaled with the crop", dataset.Config{Resize: 32, Crop: 28, Interpolation: "bicubic", Mean: []float64{0.5}, Std: []float64{0.25}, Channels: 3}, 16,
			dataset.Config{Resize: 18, Crop: 16, Interpolation: "bicubic", Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.25, 0.25, 0.25}, Channels: 3}},
		{"dataset's defaults", dataset.Config{Crop: 28, Channels: 1}, 28, dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.5}, Std: []float64{0.5}, Channels: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := traindata.ExportPreprocess(store(tc.store), tc.size)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ExportPreprocess: %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := traindata.ExportPreprocess(store(dataset.Config{Crop: 28, Channels: 2}), 28); !errors.Is(err, traindata.ErrMismatch) {
		t.Errorf("two channels: %v, want ErrMismatch", err)
	}

	// FitExport: what the checkpoint records must be what the store gives, field by field.
	rec := fm
	trained := traindata.Trained{Size: 28, Channels: 1, Classes: 10, Preprocess: &rec}
	for _, tc := range []struct {
		name, field string
		edit        func(p *dataset.Config)
	}{
		{"resize", "deitkd.preprocess.resize", func(p *dataset.Config) { p.Resize = 32 }},
		{"interpolation", "deitkd.preprocess.interpolation", func(p *dataset.Config) { p.Interpolation = "bicubic" }},
		{"std", "deitkd.preprocess.std", func(p *dataset.Config) { p.Std = []float64{0.5} }},
		{"channels", "deitkd.preprocess.channels", func(p *dataset.Config) {
			p.Channels, p.Mean, p.Std = 3, []float64{0.286, 0.286, 0.286}, []float64{0.353, 0.353, 0.353}
		}},
		{"same", "", func(p *dataset.Config) { p.Mean = []float64{float64(float32(0.286))} }},
	} {
		t.Run("FitExport "+tc.name, func(t *testing.T) {
			p := fm
			tc.edit(&p)
			got, err := traindata.FitExport(store(p), trained)
			if tc.field == "" {
				if err != nil || got.Mean[0] != p.Mean[0] {
					t.Errorf("FitExport: %+v, %v; want the store's", got, err)
				}
				return
			}
			if !errors.Is(err, traindata.ErrMismatch) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("FitExport: %v, want ErrMismatch naming %s", err, tc.field)
			}
		})
	}
}
