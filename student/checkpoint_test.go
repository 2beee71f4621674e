package student

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
)

// fuzzConfig is the architecture of the fuzz seeds: a few hundred parameters.
var fuzzConfig = Config{ImageSize: 8, Patch: 4, Dim: 8, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3}

// testPreprocess is a preprocessing that fits fuzzConfig.
func testPreprocess() dataset.Config {
	return dataset.Config{Resize: 9, Crop: 8, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
}

func TestCheckpointRecordsPreprocess(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a", "b", "c"}
	newTrainer := func(t *testing.T, rec bool) *Trainer {
		t.Helper()
		m, err := New(fuzzConfig, 1)
		if err != nil {
			t.Fatal(err)
		}
		if rec {
			if err := m.SetPreprocess(testPreprocess(), names); err != nil {
				t.Fatal(err)
			}
		}
		tr, err := NewTrainer(m, TrainConfig{StepsPerEpoch: 1, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	recorded := filepath.Join(dir, "recorded.ckpt")
	if err := newTrainer(t, true).Save(recorded); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.ckpt")
	if err := newTrainer(t, false).Save(plain); err != nil {
		t.Fatal(err)
	}

	t.Run("loaded back", func(t *testing.T) {
		m, err := LoadModel(recorded)
		if err != nil {
			t.Fatal(err)
		}
		if p := m.Preprocess(); p == nil || !reflect.DeepEqual(*p, testPreprocess()) || !slices.Equal(m.ClassNames(), names) {
			t.Errorf("recorded %+v %q, want %+v %q", p, m.ClassNames(), testPreprocess(), names)
		}
	})
	t.Run("a checkpoint without a record loads without one", func(t *testing.T) {
		m, err := LoadModel(plain)
		if err != nil {
			t.Fatal(err)
		}
		if m.Preprocess() != nil || m.ClassNames() != nil {
			t.Errorf("recorded %+v %q from a checkpoint without a record", m.Preprocess(), m.ClassNames())
		}
		// A resume from it keeps the run's own record, which the next save writes.
		tr := newTrainer(t, true)
		if err := tr.Load(plain); err != nil {
			t.Fatal(err)
		}
		if tr.Model.Preprocess() == nil {
			t.Error("resume from a checkpoint without a record dropped the run's")
		}
	})
	t.Run("resume with another preprocessing is refused", func(t *testing.T) {
		m, err := New(fuzzConfig, 1)
		if err != nil {
			t.Fatal(err)
		}
		p := testPreprocess()
		p.Mean = []float64{0.5}
		if err := m.SetPreprocess(p, names); err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, TrainConfig{StepsPerEpoch: 1, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Load(recorded); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "0.286") {
			t.Errorf("Load: %v, want ErrMismatch showing the recorded mean", err)
		}
	})
	t.Run("a record that does not fit the model is refused", func(t *testing.T) {
		m, err := New(fuzzConfig, 1)
		if err != nil {
			t.Fatal(err)
		}
		crop := testPreprocess()
		crop.Crop = 28
		three := testPreprocess()
		three.Channels = 3
		for _, tc := range []struct {
			name  string
			p     dataset.Config
			names []string
		}{{"crop", crop, nil}, {"channels", three, nil}, {"class names", testPreprocess(), names[:2]}} {
			if err := m.SetPreprocess(tc.p, tc.names); !errors.Is(err, ErrConfig) {
				t.Errorf("%s: SetPreprocess: %v, want ErrConfig", tc.name, err)
			}
		}
	})
}

// FuzzCheckpoint: any bytes give a model or an error of the package, never a panic. Each input
// is read twice: as it is (so a bad checksum is met), and as a file body with its checksum
// appended, so that mutations reach the header and the values behind the CRC.
func FuzzCheckpoint(f *testing.F) {
	m, err := New(fuzzConfig, 1)
	if err != nil {
		f.Fatal(err)
	}
	if err := m.SetPreprocess(testPreprocess(), []string{"a", "b", "c"}); err != nil {
		f.Fatal(err)
	}
	tr, err := NewTrainer(m, TrainConfig{StepsPerEpoch: 1, Batch: 2})
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	modelOnly := func(path string) error { return writeCheckpoint(path, m, nil) } // as an older Model.Save wrote
	for _, save := range []func(string) error{modelOnly, tr.Save} {
		path := filepath.Join(dir, "seed.ckpt")
		if err := save(path); err != nil {
			f.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:len(raw)-4])
	}
	f.Add([]byte(ckptMagic))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := binary.LittleEndian.AppendUint32(slices.Clip(body), crc32.ChecksumIEEE(body))
		for _, raw := range [][]byte{body, sum} {
			h, data, err := parseCheckpoint(raw, "fuzz")
			if err != nil {
				if !errors.Is(err, ErrBadCheckpoint) {
					t.Fatalf("error %v is not ErrBadCheckpoint", err)
				}
				continue
			}
			// New allocates what the header's config says; a big one is a valid file
			// this target cannot afford to load.
			if c := h.Config.WithDefaults(); c.ImageSize > 64 || c.Dim > 64 || c.Depth > 4 || c.Classes > 100 ||
				!(c.MLPRatio <= 8) || c.Patch < 2 || c.Heads > 16 || c.Channels > 3 {
				continue
			}
			m, err := loadModel("fuzz", h, data)
			if err != nil {
				if !errors.Is(err, ErrBadCheckpoint) && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrConfig) {
					t.Fatalf("error %v is not one of the package's", err)
				}
				continue
			}
			if err := checkRecord(m.Config(), m.Preprocess(), m.ClassNames()); err != nil {
				t.Fatalf("loaded a record that does not fit: %v", err)
			}
		}
	})
}

// TestWeightInit: InitTorch draws every linear layer's weight and bias uniformly in ±1/√fan_in
// (PyTorch's nn.Linear and nn.Conv2d defaults) with zero tokens and positions; InitTimm is New's;
// an unknown init is refused.
func TestWeightInit(t *testing.T) {
	c := Config{Dim: 32, Depth: 2, Heads: 2}
	m, err := NewInit(c, 3, InitTorch)
	if err != nil {
		t.Fatal(err)
	}
	fanIn := map[string]int{}
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".weight") && len(p.Shape) > 1 {
			n := 1
			for _, d := range p.Shape[1:] {
				n *= d
			}
			fanIn[strings.TrimSuffix(p.Name, ".weight")] = n
		}
	}
	for _, p := range m.Params() {
		layer := strings.TrimSuffix(strings.TrimSuffix(p.Name, ".bias"), ".weight")
		lo, hi := p.Data[0], p.Data[0]
		for _, v := range p.Data {
			lo, hi = min(lo, v), max(hi, v)
		}
		switch n, linear := fanIn[layer]; {
		case linear:
			b := float32(1 / math.Sqrt(float64(n)))
			if hi > b || lo < -b || (len(p.Data) >= 100 && (hi < b*0.9 || lo > -b*0.9)) {
				t.Errorf("%s: values in [%g, %g], want spread over ±1/√%d = ±%g", p.Name, lo, hi, n, b)
			}
		case strings.HasSuffix(p.Name, "norm1.weight"), strings.HasSuffix(p.Name, "norm2.weight"), p.Name == "norm.weight":
			if lo != 1 || hi != 1 {
				t.Errorf("%s: [%g, %g], want ones", p.Name, lo, hi)
			}
		default:
			if lo != 0 || hi != 0 {
				t.Errorf("%s: [%g, %g], want zeros", p.Name, lo, hi)
			}
		}
	}
	a, _ := New(c, 3)
	b, _ := NewInit(c, 3, InitTimm)
	if !slices.Equal(a.params, b.params) {
		t.Error("New and NewInit(InitTimm) differ")
	}
	if _, err := NewInit(c, 3, "xavier"); !errors.Is(err, ErrConfig) {
		t.Errorf("init xavier: %v, want ErrConfig", err)
	}
	var w WeightInit
	if err := w.Set("torch"); err != nil || w != InitTorch || w.Set("jax") == nil {
		t.Errorf("WeightInit.Set: %v %q", err, w)
	}
}

// TestLoadOlderCheckpoint: a training checkpoint as an older version wrote it — the recipe
// "short" (now RecipeDefault) and the drop-path rate in the model config (now the recipe's) —
// loads as a model and resumes as a Trainer, and a recorded word no version wrote is refused.
func TestLoadOlderCheckpoint(t *testing.T) {
	tc := shortRecipe(t, 16, 4, DistillHard)
	tc.DropPath = 0.1
	m, err := New(smallConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, tc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "new.ckpt")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// rewrite returns the checkpoint with its header rewritten by r, length and checksum again.
	rewrite := func(r *strings.Replacer) []byte {
		body := raw[len(ckptMagic) : len(raw)-4]
		n := binary.LittleEndian.Uint32(body)
		hdr := r.Replace(string(body[4 : 4+n]))
		if hdr == string(body[4:4+n]) {
			t.Fatalf("header not in the expected form: %s", body[4:4+n])
		}
		out := append([]byte(ckptMagic), binary.LittleEndian.AppendUint32(nil, uint32(len(hdr)))...)
		out = append(append(out, hdr...), body[4+n:]...)
		return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out))
	}
	old := filepath.Join(dir, "old.ckpt")
	if err := os.WriteFile(old, rewrite(strings.NewReplacer(`"recipe":"default"`, `"recipe":"short"`,
		`"drop_path":0.1,`, ``, `"config":{`, `"config":{"drop_path":0.1,`)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _, err := readCheckpoint(old)
	if err != nil || h.Train == nil || h.Train.Recipe != RecipeDefault {
		t.Fatalf("older checkpoint: recipe %v, %v", h.Train, err)
	}
	if _, err := LoadModel(old); err != nil {
		t.Fatalf("LoadModel of an older checkpoint: %v", err)
	}
	m2, _ := New(smallConfig, 1)
	tr2, err := NewTrainer(m2, tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Load(old); err != nil {
		t.Fatalf("resume from an older checkpoint: %v", err)
	}
	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, rewrite(strings.NewReplacer(`"recipe":"default"`, `"recipe":"long"`)), 0o644)
	if _, err := LoadModel(bad); !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), `"long"`) {
		t.Errorf("a checkpoint recording recipe long: %v, want ErrBadCheckpoint naming it", err)
	}
}
