package student

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"reflect"
	"slices"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/atomicfile"
)

// A checkpoint file is
//
//	magic "DEITKD-STUDENT-1\n"
//	u32 header length, header JSON (ckptHeader)
//	float32 little endian: parameters, then (with optimiser state) AdamW's m and v,
//	                       each in the model's flat layout (Params order)
//	u32 CRC-32 (IEEE) of everything before it
//
// The header's preprocess and class_names (what the model was trained on, SetPreprocess) are
// optional: checkpoints written before they were recorded lack them and still load.
const ckptMagic = "DEITKD-STUDENT-1\n"

type ckptHeader struct {
	Config     Config          `json:"config"`
	Preprocess *dataset.Config `json:"preprocess,omitempty"`
	ClassNames []string        `json:"class_names,omitempty"`
	Train      *TrainConfig    `json:"train,omitempty"`
	Step       int             `json:"step"`
	AdamT      int             `json:"adam_t"`
	RNG        []byte          `json:"rng,omitempty"` // math/rand/v2 PCG state
	Params     []ckptParam     `json:"params"`
	Moments    bool            `json:"moments"`
}

type ckptParam struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// SetPreprocess records what the model is trained on: p, the eval preprocessing at the model's
// own input size (as an export embeds it), and the names of its classes in index order (nil:
// unnamed). Its checkpoints then carry both, so that an export needs no label store. p must
// fit the model: its channels and crop, one mean and one std per channel, one name per class.
func (m *Model) SetPreprocess(p dataset.Config, classNames []string) error {
	if len(classNames) == 0 {
		classNames = nil // a store's [] names no class either
	}
	if err := checkRecord(m.cfg, &p, classNames); err != nil {
		return fmt.Errorf("%w: %s", ErrConfig, err)
	}
	p.Mean, p.Std = slices.Clone(p.Mean), slices.Clone(p.Std)
	m.pre, m.classNames = &p, slices.Clone(classNames)
	return nil
}

// Preprocess is the preprocessing SetPreprocess recorded, or that the checkpoint the model was
// loaded from records; nil if none. ClassNames are the class names recorded with it.
func (m *Model) Preprocess() *dataset.Config {
	if m.pre == nil {
		return nil
	}
	p := *m.pre
	p.Mean, p.Std = slices.Clone(p.Mean), slices.Clone(p.Std)
	return &p
}
func (m *Model) ClassNames() []string { return slices.Clone(m.classNames) }

// checkRecord refuses a recorded preprocessing or class names that do not fit c.
func checkRecord(c Config, p *dataset.Config, names []string) error {
	switch {
	case p == nil && names != nil:
		return errors.New("class names without a preprocessing")
	case p == nil:
		return nil
	case p.Channels != c.Channels:
		return fmt.Errorf("preprocess has %d channels, the model %d", p.Channels, c.Channels)
	case p.Crop != c.ImageSize || p.Resize < p.Crop:
		return fmt.Errorf("preprocess resizes to %d and crops %d pixels, the model takes %d", p.Resize, p.Crop, c.ImageSize)
	case len(p.Mean) != c.Channels || len(p.Std) != c.Channels:
		return fmt.Errorf("preprocess has %d means and %d stds for %d channels", len(p.Mean), len(p.Std), c.Channels)
	case names != nil && len(names) != c.Classes:
		return fmt.Errorf("%d class names for %d classes", len(names), c.Classes)
	}
	return nil
}

// Save writes the whole training state (config, recipe, parameters,
// AdamW moments, step, drop-path RNG) to path atomically: a temporary file
// in the same folder, fsync, rename, fsync of the folder.
func (t *Trainer) Save(path string) error {
	return writeCheckpoint(path, t.Model, t)
}

func writeCheckpoint(path string, m *Model, t *Trainer) (err error) {
	h := ckptHeader{Config: m.cfg, Preprocess: m.pre, ClassNames: m.classNames}
	for _, s := range m.specs {
		h.Params = append(h.Params, ckptParam{s.name, s.shape})
	}
	bufs := [][]float32{m.params}
	if t != nil {
		tc := t.Config
		h.Train, h.Step, h.AdamT, h.Moments = &tc, t.step, t.Opt.T, true
		if h.RNG, err = t.pcg.MarshalBinary(); err != nil {
			return fmt.Errorf("student: save %s: %w", path, err)
		}
		bufs = append(bufs, t.Opt.M, t.Opt.V)
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("student: save %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(f io.Writer) error {
		crc := crc32.NewIEEE()
		w := bufio.NewWriter(io.MultiWriter(f, crc))
		w.WriteString(ckptMagic)
		binary.Write(w, binary.LittleEndian, uint32(len(hdr)))
		w.Write(hdr)
		var b [4]byte
		for _, buf := range bufs {
			for _, v := range buf {
				binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
				w.Write(b[:])
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(b[:], crc.Sum32())
		_, err := f.Write(b[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("student: save %s: %w", path, err)
	}
	return nil
}

// readCheckpoint returns the header and the float32 buffers of a file.
func readCheckpoint(path string) (ckptHeader, []float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ckptHeader{}, nil, fmt.Errorf("student: load %s: %w", path, err)
	}
	return parseCheckpoint(raw, path)
}

// parseCheckpoint decodes the bytes of a checkpoint file; path names it in errors.
func parseCheckpoint(raw []byte, path string) (ckptHeader, []float32, error) {
	var h ckptHeader
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadCheckpoint, path, why) }
	if len(raw) < len(ckptMagic)+8 || string(raw[:len(ckptMagic)]) != ckptMagic {
		return h, nil, bad("no magic")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return h, nil, bad("checksum mismatch (truncated or corrupt)")
	}
	body = body[len(ckptMagic):]
	n := int(binary.LittleEndian.Uint32(body))
	if n > len(body)-4 {
		return h, nil, bad("header length")
	}
	if err := json.Unmarshal(body[4:4+n], &h); err != nil {
		return h, nil, bad("header: " + err.Error())
	}
	if err := checkRecord(h.Config.WithDefaults(), h.Preprocess, h.ClassNames); err != nil {
		return h, nil, bad(err.Error())
	}
	body = body[4+n:]
	if len(body)%4 != 0 {
		return h, nil, bad("data length")
	}
	data := make([]float32, len(body)/4)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return h, data, nil
}

// check refuses a checkpoint of another architecture, naming the field.
func (m *Model) check(path string, h ckptHeader, data []float32, moments bool) error {
	if d := archDiff(h.Config, m.cfg); d != "" {
		return fmt.Errorf("%w: %s: architecture differs: %s (checkpoint vs this run)", ErrMismatch, path, d)
	}
	if len(h.Params) != len(m.specs) {
		return fmt.Errorf("%w: %s: %d parameters, model has %d", ErrMismatch, path, len(h.Params), len(m.specs))
	}
	for i, p := range h.Params {
		if p.Name != m.specs[i].name || fmt.Sprint(p.Shape) != fmt.Sprint(m.specs[i].shape) {
			return fmt.Errorf("%w: %s: parameter %d is %s %v, model has %s %v", ErrMismatch, path, i, p.Name, p.Shape, m.specs[i].name, m.specs[i].shape)
		}
	}
	want := len(m.params)
	if moments {
		want *= 3
	}
	if len(data) != want {
		return fmt.Errorf("%w: %s: %d values, want %d", ErrBadCheckpoint, path, len(data), want)
	}
	return nil
}

// LoadModel reads a model (for evaluation or export) from a checkpoint
// written by Trainer.Save (or a model-only one, which an older version wrote).
func LoadModel(path string) (*Model, error) {
	h, data, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	return loadModel(path, h, data)
}

func loadModel(path string, h ckptHeader, data []float32) (*Model, error) {
	m, err := New(h.Config, 0)
	if err != nil {
		return nil, fmt.Errorf("student: load %s: %w", path, err)
	}
	if err := m.check(path, h, data, h.Moments); err != nil {
		return nil, err
	}
	copy(m.params, data)
	m.pre, m.classNames = h.Preprocess, h.ClassNames
	return m, nil
}

// Load restores the training state of a checkpoint written by
// Trainer.Save into t, to continue exactly where it stopped. A checkpoint
// of another architecture is refused with ErrMismatch naming the first
// differing Config field, and so is one that records another preprocessing or other class
// names than t.Model (SetPreprocess; a model without a record takes the checkpoint's). The
// recipe is taken from t.
func (t *Trainer) Load(path string) error {
	h, data, err := readCheckpoint(path)
	if err != nil {
		return err
	}
	if !h.Moments {
		return fmt.Errorf("%w: %s: no optimiser state (a model, not a training checkpoint)", ErrBadCheckpoint, path)
	}
	if err := t.Model.check(path, h, data, true); err != nil {
		return err
	}
	if m := t.Model; h.Preprocess != nil && m.pre != nil &&
		(!reflect.DeepEqual(*h.Preprocess, *m.pre) || !slices.Equal(h.ClassNames, m.classNames)) {
		type record struct {
			Preprocess *dataset.Config `json:"preprocess"`
			ClassNames []string        `json:"class_names"`
		}
		a, _ := json.Marshal(record{h.Preprocess, h.ClassNames})
		b, _ := json.Marshal(record{m.pre, m.classNames})
		return fmt.Errorf("%w: %s: trained on other data: checkpoint records %s, this run %s", ErrMismatch, path, a, b)
	} else if m.pre == nil {
		m.pre, m.classNames = h.Preprocess, h.ClassNames
	}
	if err := t.pcg.UnmarshalBinary(h.RNG); err != nil {
		return fmt.Errorf("%w: %s: rng: %v", ErrBadCheckpoint, path, err)
	}
	n := len(t.Model.params)
	copy(t.Model.params, data[:n])
	copy(t.Opt.M, data[n:2*n])
	copy(t.Opt.V, data[2*n:])
	t.Opt.T, t.step = h.AdamT, h.Step
	return nil
}

// IsCheckpoint says whether head, the first bytes of a file, begin as a checkpoint's (Save,
// Trainer.Save); a reader of several formats (export.LoadInit) tells them apart by it.
func IsCheckpoint(head []byte) bool {
	return len(head) >= len(ckptMagic) && string(head[:len(ckptMagic)]) == ckptMagic
}
