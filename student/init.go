package student

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
)

// Initialising a student from another's weights (train --init): a deitkd
// checkpoint or a safetensors file with timm's DeiT keys, at this config's
// image size and class count. Weights only: the optimiser, schedule and step
// start fresh. Reading the files is the caller's (export.LoadInit reads
// both formats; student cannot import export, which imports it): Init takes
// the tensors by their timm names.

// InitOptions says what Init may change where a file's weights do not fit
// the config. The zero value changes nothing but the positional embedding's
// grid and a missing distillation token.
type InitOptions struct {
	// NewHeads re-initialises head and head_dist, as New does from Seed,
	// when the file's class count differs from the config's (a 1000-class
	// ImageNet student fine-tuned on another data set); without it such a
	// file is refused. With equal class counts the heads are loaded.
	NewHeads bool
	// Seed draws the initial values of what is re-initialised.
	Seed uint64
}

// InitReport says what Init did besides copying tensors as they were, one
// field per choice, for train's log (Notes).
type InitReport struct {
	Source string // the file, as the caller named it
	Format string // what the caller read it as: "deitkd checkpoint" or "safetensors"
	// Copied counts the tensors copied unchanged.
	Copied int
	// GridFrom and GridTo are the patch grid sides of the file's positional
	// embedding and of the model's; when they differ the grid was resampled
	// as timm's resample_abs_pos_embed (bicubic, antialiased, the prefix rows
	// kept).
	GridFrom, GridTo int
	// NewHeads: head and head_dist were re-initialised (InitOptions.NewHeads)
	// for ClassesTo classes; the file has ClassesFrom.
	NewHeads               bool
	ClassesFrom, ClassesTo int
	// DistFromCls: the file has no dist_token (a plain ViT or timm's
	// deit_*_patch16_*): the model's distillation token and its position row
	// are copies of the class token's.
	DistFromCls bool
	// HeadDistFromHead: the file has no head_dist: the model's is a copy of
	// head (unless the heads are new).
	HeadDistFromHead bool
	// ClassNames are the class names the file records (a checkpoint's, an
	// export's deitkd.class_names), nil if none: the caller may compare them
	// with its data set's.
	ClassNames []string
}

// Notes are the report's choices as log lines, none when the file fitted as it was.
func (r InitReport) Notes() []string {
	var out []string
	if r.GridFrom != r.GridTo {
		out = append(out, fmt.Sprintf("init %s: pos_embed resampled from a %d×%d to a %d×%d patch grid (bicubic, antialiased; class and distillation rows kept)",
			r.Source, r.GridFrom, r.GridFrom, r.GridTo, r.GridTo))
	}
	if r.NewHeads {
		out = append(out, fmt.Sprintf("init %s: head and head_dist re-initialised for %d classes (the file's have %d)", r.Source, r.ClassesTo, r.ClassesFrom))
	}
	if r.DistFromCls {
		out = append(out, fmt.Sprintf("init %s: no dist_token in the file: the distillation token and its position are copies of the class token's", r.Source))
	}
	if r.HeadDistFromHead {
		out = append(out, fmt.Sprintf("init %s: no head_dist in the file: head_dist is a copy of head", r.Source))
	}
	return out
}

var blockKey = regexp.MustCompile(`^blocks\.(\d+)\.`)

// Init returns a model of architecture cfg with the weights of src, named
// and shaped as timm's DeiT (Model.Params; Grad is not read), from the file
// source (for messages and the report). Every tensor of src must be one of
// the model's and every one of the model's must be in src, of the same shape,
// except as InitOptions and InitReport say: the positional embedding's grid
// is resampled to cfg's, a file without a distillation token gets the class
// token's, the heads are re-initialised for another class count with
// o.NewHeads. Anything else that differs is ErrMismatch naming the tensor and
// both shapes. The model records no preprocessing (its image size may be
// new): the caller sets it (SetPreprocess).
func Init(cfg Config, src []Param, source string, o InitOptions) (*Model, InitReport, error) {
	cfg = cfg.WithDefaults()
	m, err := New(cfg, o.Seed)
	if err != nil {
		return nil, InitReport{}, err
	}
	r := InitReport{Source: source, GridTo: cfg.ImageSize / cfg.Patch, ClassesTo: cfg.Classes}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrMismatch, source, fmt.Sprintf(format, a...))
	}
	byName := make(map[string]Param, len(src))
	fileDepth := 0
	for _, p := range src {
		if _, dup := byName[p.Name]; dup {
			return nil, r, bad("tensor %s given twice", p.Name)
		}
		n := 1
		for _, s := range p.Shape {
			n *= s
		}
		if n != len(p.Data) {
			return nil, r, bad("tensor %s has shape %v but %d values", p.Name, p.Shape, len(p.Data))
		}
		byName[p.Name] = p
		if s := blockKey.FindStringSubmatch(p.Name); s != nil {
			i, _ := strconv.Atoi(s[1])
			fileDepth = max(fileDepth, i+1)
		}
	}
	for _, p := range src {
		if _, ok := m.index[p.Name]; !ok {
			if fileDepth != cfg.Depth {
				return nil, r, bad("tensor %s is not a parameter of the model: the file has %d blocks, the model depth %d", p.Name, fileDepth, cfg.Depth)
			}
			return nil, r, bad("tensor %s is not a parameter of the model (no_dist_token %v)", p.Name, cfg.NoDistToken)
		}
	}
	has := func(name string) bool { _, ok := byName[name]; return ok }
	fileDist := has("dist_token")
	r.DistFromCls = !fileDist && !cfg.NoDistToken
	shapeErr := func(name string, file, model []int) error {
		return bad("tensor %s is %v in the file, %v in the model", name, file, model)
	}
	get := func(name string) (Param, error) {
		p, ok := byName[name]
		if !ok {
			if blockKey.MatchString(name) && fileDepth != cfg.Depth {
				return p, bad("no tensor %s: the file has %d blocks, the model depth %d", name, fileDepth, cfg.Depth)
			}
			return p, bad("no tensor %s (the model's is %v)", name, m.specs[m.index[name]].shape)
		}
		return p, nil
	}

	// The heads first: their class count decides whether they are loaded.
	head, err := get("head.weight")
	if err != nil {
		return nil, r, err
	}
	mh, _ := m.Param("head.weight")
	if len(head.Shape) == 2 {
		r.ClassesFrom = head.Shape[0]
	}
	if len(head.Shape) == 2 && head.Shape[1] == cfg.Dim && head.Shape[0] != cfg.Classes {
		if !o.NewHeads {
			return nil, r, bad("tensor head.weight is %v in the file, %v in the model: %d classes in the file, %d in the config (new heads re-initialise them)",
				head.Shape, mh.Shape, head.Shape[0], cfg.Classes)
		}
		r.NewHeads = true
	}
	for _, p := range m.Params() {
		name := p.Name
		switch {
		case r.NewHeads && (name == "head.weight" || name == "head.bias" || name == "head_dist.weight" || name == "head_dist.bias"):
			continue // New's initial values
		case name == "dist_token" && r.DistFromCls:
			name = "cls_token"
		case (name == "head_dist.weight" || name == "head_dist.bias") && !has(name):
			r.HeadDistFromHead = true
			name = "head" + name[len("head_dist"):]
		case name == "pos_embed":
			if err := initPosEmbed(p, byName, fileDist, cfg, &r, bad, shapeErr); err != nil {
				return nil, r, err
			}
			continue
		}
		f, err := get(name)
		if err != nil {
			return nil, r, err
		}
		if !slices.Equal(f.Shape, p.Shape) {
			return nil, r, shapeErr(f.Name, f.Shape, p.Shape)
		}
		copy(p.Data, f.Data)
		if name == p.Name {
			r.Copied++
		}
	}
	return m, r, nil
}

// initPosEmbed fills the model's pos_embed p from the file's: prefix rows
// kept (the class row twice for a file without a distillation token), the
// grid resampled to the model's.
func initPosEmbed(p Param, byName map[string]Param, fileDist bool, cfg Config, r *InitReport,
	bad func(string, ...any) error, shapeErr func(string, []int, []int) error) error {
	f, ok := byName["pos_embed"]
	if !ok {
		return bad("no tensor pos_embed (the model's is %v)", p.Shape)
	}
	D := cfg.Dim
	if len(f.Shape) != 3 || f.Shape[0] != 1 || f.Shape[2] != D {
		return shapeErr("pos_embed", f.Shape, p.Shape)
	}
	filePrefix := 1
	if fileDist {
		filePrefix = 2
	}
	n := f.Shape[1] - filePrefix
	g := int(math.Round(math.Sqrt(float64(max(n, 0)))))
	if n < 1 || g*g != n {
		return bad("tensor pos_embed is %v in the file: %d rows after %d prefix rows are not a square patch grid (the model's is %v)",
			f.Shape, n, filePrefix, p.Shape)
	}
	r.GridFrom = g
	prefix := 1
	if !cfg.NoDistToken {
		prefix = 2
	}
	// The file's rows with the model's prefix: a missing distillation row is the class row's.
	rows := make([]float32, 0, (prefix+n)*D)
	rows = append(rows, f.Data[:D]...)
	if prefix == 2 {
		if fileDist {
			rows = append(rows, f.Data[D:2*D]...)
		} else {
			rows = append(rows, f.Data[:D]...)
		}
	}
	rows = append(rows, f.Data[filePrefix*D:]...)
	copy(p.Data, resamplePosEmbed(rows, prefix, g, r.GridTo, D))
	if g == r.GridTo && prefix == filePrefix {
		r.Copied++
	}
	return nil
}
