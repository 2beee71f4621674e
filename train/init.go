package train

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/student"
)

// A run started from another student's weights (Options.Init, train --init): the file is read
// once, in New, by export.LoadInit (a deitkd checkpoint or a safetensors file with timm's DeiT
// keys), so that a tensor that does not fit is refused before anything is written; the
// optimiser, the schedule and the step start fresh. run.json records the file's sha256 (and
// NewHeads) in its settings, which a resume must repeat, and its path in its inputs, which a
// resume only logs when it moved: a resume of an --init run with another file is refused, and a
// resume that finds a checkpoint continues from the checkpoint, not from the file.

// initRecord is what run.json's settings record of Options.Init.
type initRecord struct {
	SHA256   string `json:"sha256"`
	NewHeads bool   `json:"new_heads,omitempty"`
}

// resolveInit reads Options.Init into j.init for the architecture j.model, logging every choice
// student.Init made, and records it in j's settings and inputs.
func (j *Job) resolveInit() error {
	o := j.o
	if o.Init == "" {
		if o.NewHeads {
			return fmt.Errorf("%w: new heads without an init file to start from", ErrOptions)
		}
		if j.recipe.Recipe == student.RecipeFinetune {
			return fmt.Errorf("%w: the finetune recipe continues a trained student: it needs an init file with its weights", ErrOptions)
		}
		return nil
	}
	sum, err := filehash.SHA256(o.Init)
	if err != nil {
		return fmt.Errorf("%w: init: %w", ErrOptions, err)
	}
	abs, err := filepath.Abs(o.Init)
	if err != nil {
		return fmt.Errorf("train: init: %w", err)
	}
	m, r, err := export.LoadInit(o.Init, j.model, student.InitOptions{NewHeads: o.NewHeads, Seed: o.Seed})
	if err != nil {
		return err
	}
	o.Log(fmt.Sprintf("init %s (%s, sha256 %s): %d tensors copied as they are; optimiser, schedule and step start fresh",
		o.Init, r.Format, sum[:12], r.Copied))
	for _, n := range r.Notes() {
		o.Log(n)
	}
	if names := j.train.Meta().ClassNames; r.ClassNames != nil && !r.NewHeads && !slices.Equal(r.ClassNames, names) {
		o.Log(fmt.Sprintf("init %s: its heads were trained for the classes %q, the label store names %q: the heads are loaded in that order (new heads are drawn only for another class count)",
			o.Init, r.ClassNames, names))
	}
	j.init = m
	j.settings.Init = &initRecord{SHA256: sum, NewHeads: o.NewHeads}
	j.inputs.Init = abs
	return nil
}

// initialModel is the student a run starts from: Options.Init's, or one drawn from the seed.
func (j *Job) initialModel() (*student.Model, error) {
	if j.init != nil {
		return j.init, nil
	}
	return student.NewInit(j.model, j.recipe.Seed, j.recipe.WeightInit)
}
