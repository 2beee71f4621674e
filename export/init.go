package export

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/student"
)

// LoadInit returns a student of architecture cfg initialised from the weights in the file at
// path (train --init): a deitkd checkpoint (student.Model.Save or Trainer.Save; the optimiser
// state is not read) or a safetensors file with timm's DeiT keys (Safetensors writes one, and
// timm's deit_*_patch16_* checkpoints are one). Which is which is told by the checkpoint's
// magic. student.Init decides what fits and reports every choice it made; the report's Format
// names the format read and its ClassNames are those the file records. It lives here, not in
// student, because reading safetensors is this package's and this package imports student.
func LoadInit(path string, cfg student.Config, o student.InitOptions) (*student.Model, student.InitReport, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, student.InitReport{}, fmt.Errorf("export: init: %w", err)
	}
	var params []student.Param
	var names []string
	format := "safetensors"
	if student.IsCheckpoint(raw) {
		format = "deitkd checkpoint"
		m, err := student.LoadModel(path)
		if err != nil {
			return nil, student.InitReport{}, err
		}
		params, names = m.Params(), m.ClassNames()
	} else {
		f, err := ReadSafetensors(raw)
		if err != nil {
			return nil, student.InitReport{}, fmt.Errorf("%s: %w", path, err)
		}
		for _, t := range f.Tensors {
			params = append(params, student.Param{Name: t.Name, Shape: t.Shape, Data: t.Data})
		}
		if s, ok := f.Metadata[schema.KeyClassNames]; ok {
			if err := json.Unmarshal([]byte(s), &names); err != nil {
				return nil, student.InitReport{}, fmt.Errorf("%w: %s: %s: %v", ErrSafetensors, path, schema.KeyClassNames, err)
			}
		}
	}
	m, r, err := student.Init(cfg, params, path, o)
	r.Format, r.ClassNames = format, names
	if err != nil {
		return nil, r, err
	}
	return m, r, nil
}
