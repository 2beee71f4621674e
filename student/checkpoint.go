package student

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/deitkd/deitkd/internal/atomicfile"
)

// A checkpoint file is
//
//	magic "DEITKD-STUDENT-1\n"
//	u32 header length, header JSON (ckptHeader)
//	float32 little endian: parameters, then (with optimiser state) AdamW's m and v,
//	                       each in the model's flat layout (Params order)
//	u32 CRC-32 (IEEE) of everything before it
const ckptMagic = "DEITKD-STUDENT-1\n"

type ckptHeader struct {
	Config  Config       `json:"config"`
	Train   *TrainConfig `json:"train,omitempty"`
	Step    int          `json:"step"`
	AdamT   int          `json:"adam_t"`
	RNG     []byte       `json:"rng,omitempty"` // math/rand/v2 PCG state
	Params  []ckptParam  `json:"params"`
	Moments bool         `json:"moments"`
}

type ckptParam struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// Save writes the model's parameters to path atomically.
func (m *Model) Save(path string) error {
	return writeCheckpoint(path, m, nil)
}

// Save writes the whole training state (config, recipe, parameters,
// AdamW moments, step, drop-path RNG) to path atomically: a temporary file
// in the same folder, fsync, rename, fsync of the folder.
func (t *Trainer) Save(path string) error {
	return writeCheckpoint(path, t.Model, t)
}

func writeCheckpoint(path string, m *Model, t *Trainer) (err error) {
	h := ckptHeader{Config: m.cfg}
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
	var h ckptHeader
	raw, err := os.ReadFile(path)
	if err != nil {
		return h, nil, fmt.Errorf("student: load %s: %w", path, err)
	}
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
// written by Model.Save or Trainer.Save.
func LoadModel(path string) (*Model, error) {
	h, data, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	m, err := New(h.Config, 0)
	if err != nil {
		return nil, fmt.Errorf("student: load %s: %w", path, err)
	}
	if err := m.check(path, h, data, h.Moments); err != nil {
		return nil, err
	}
	copy(m.params, data)
	return m, nil
}

// Load restores the training state of a checkpoint written by
// Trainer.Save into t, to continue exactly where it stopped. A checkpoint
// of another architecture is refused with ErrMismatch naming the first
// differing Config field; the recipe is taken from t.
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
