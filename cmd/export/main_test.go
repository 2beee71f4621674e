package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/export"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
	"github.com/deitkd/deitkd/student"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	m, ckpt := tinyCheckpoint(t, dir)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--ckpt", ckpt, "--out", out, "--fuse", "logits",
		"--class-names", `["a","b","c","d","e","f","g","h","i","j"]`}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{export.ONNXFile, export.SafetensorsFile} {
		if !strings.Contains(stdout.String(), filepath.Join(out, name)) {
			t.Errorf("stdout %q does not name %s", stdout.String(), name)
		}
	}
	f := readSafetensors(t, filepath.Join(out, export.SafetensorsFile))
	if f.Metadata[export.MetaFuse] != string(student.FuseLogits) || !strings.HasPrefix(f.Metadata[schema.KeyClassNames], `["a",`) {
		t.Errorf("metadata %v", f.Metadata)
	}
	m2, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		if !reflect.DeepEqual(p.Data, m2.Params()[i].Data) {
			t.Errorf("%s differs from the checkpoint", p.Name)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--ckpt", "x"},
		{"--ckpt", "x", "--out", "y", "--format", "pt"},
		{"--ckpt", "x", "--out", "y", "--preprocess", "{"},
		{"--ckpt", "x", "--out", "y", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--ckpt", filepath.Join(t.TempDir(), "missing"), "--out", t.TempDir()}, &stdout, &stderr); code != 1 {
		t.Errorf("missing checkpoint: exit %d, want 1", code)
	}
}

// TestRecorded: without --labels, both files embed the preprocessing and class names the
// checkpoint records; a checkpoint that records none is refused, saying to pass --labels.
func TestRecorded(t *testing.T) {
	dir := t.TempDir()
	m, err := student.New(student.Config{Depth: 1, ImageSize: 32, Patch: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pre := dataset.Config{Resize: 37, Crop: 32, Interpolation: "bicubic", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	if err := m.SetPreprocess(pre, names); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "model.ckpt")
	if err := save(m, ckpt); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--ckpt", ckpt, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	wantPre, _ := json.Marshal(pre)
	wantNames, _ := json.Marshal(names)
	for name, md := range map[string]map[string]string{
		export.SafetensorsFile: readSafetensors(t, filepath.Join(out, export.SafetensorsFile)).Metadata,
		export.ONNXFile:        onnxMetadata(t, filepath.Join(out, export.ONNXFile)),
	} {
		if md[schema.KeyPreprocess] != string(wantPre) || md[schema.KeyClassNames] != string(wantNames) {
			t.Errorf("%s: preprocess %s, class names %s; the checkpoint records %s, %s",
				name, md[schema.KeyPreprocess], md[schema.KeyClassNames], wantPre, wantNames)
		}
	}

	t.Run("a checkpoint without a record", func(t *testing.T) {
		old := oldCheckpoint(t, dir)
		var stdout, stderr bytes.Buffer
		code := run([]string{"--ckpt", old, "--out", filepath.Join(dir, "old")}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "does not record the preprocessing") || !strings.Contains(stderr.String(), "--labels") {
			t.Errorf("exit %d, want 1 saying to pass --labels: %s", code, stderr.String())
		}
		// --labels or --preprocess give what it lacks.
		lab := labelStore(t, filepath.Join(dir, "k10"), 10, 0.286, 0.353, nil)
		fm, _ := json.Marshal(fmPreprocess())
		for _, args := range [][]string{{"--labels", lab}, {"--preprocess", string(fm)}} {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"--ckpt", old, "--out", filepath.Join(dir, "old"), "--format", "safetensors"}, args...), &stdout, &stderr); code != 0 {
				t.Errorf("%q: exit %d: %s", args, code, stderr.String())
			}
		}
	})
}

// TestLabelsMismatch: --labels refuses a store the checkpoint was not trained on (issue
// 13.7), naming the key, both values, the store and the checkpoint; a store that fits gives
// the checkpoint's own preprocessing.
func TestLabelsMismatch(t *testing.T) {
	dir := t.TempDir()
	_, ckpt := tinyCheckpoint(t, dir) // K=10, normalised 0.286/0.353
	old := oldCheckpoint(t, dir)      // K=10, records nothing
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	for _, tc := range []struct {
		name, ckpt, store string
		want              []string // in the message; none: exit 0
	}{
		{"K=20 store normalised 0.5", ckpt, labelStore(t, filepath.Join(dir, "k20"), 20, 0.5, 0.5, nil),
			[]string{"deitkd.num_classes", "store has 20, checkpoint has 10"}},
		{"K=20 store, checkpoint without a record", old, filepath.Join(dir, "k20"),
			[]string{"deitkd.num_classes", "store has 20, checkpoint has 10"}},
		{"store normalised 0.5", ckpt, labelStore(t, filepath.Join(dir, "k10-05"), 10, 0.5, 0.5, nil),
			[]string{"deitkd.preprocess.mean", "store has [0.5], checkpoint has [0.286]"}},
		{"store with class names", ckpt, labelStore(t, filepath.Join(dir, "named"), 10, 0.286, 0.353, names),
			[]string{"deitkd.class_names"}},
		{"the store it was trained on", ckpt, labelStore(t, filepath.Join(dir, "k10"), 10, 0.286, 0.353, nil), nil},
		// float32 is the precision pixels are normalised in: the same mean written otherwise fits.
		{"the same mean in float32", ckpt, labelStore(t, filepath.Join(dir, "k10-f32"), 10, 0.28600000001, 0.353, nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			code := run([]string{"--ckpt", tc.ckpt, "--labels", tc.store, "--out", out, "--format", "safetensors"}, &stdout, &stderr)
			if tc.want == nil {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				return
			}
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr.String())
			}
			for _, w := range append(tc.want, tc.store, tc.ckpt) {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("message lacks %q: %s", w, stderr.String())
				}
			}
			if _, err := os.Stat(filepath.Join(out, export.SafetensorsFile)); err == nil {
				t.Error("a refused export wrote a file")
			}
		})
	}
}

// TestFuseNames checks that --fuse takes train's names: probs (the default, recorded in the
// export's metadata as "softmax") and logits reach the export, anything else (softmax too) is
// a usage error.
func TestFuseNames(t *testing.T) {
	dir := t.TempDir()
	_, ckpt := tinyCheckpoint(t, dir)
	for _, tc := range []struct{ fuse, want string }{{"probs", "softmax"}, {"logits", "logits"}, {"mean", ""}, {"softmax", ""}} {
		t.Run(tc.fuse, func(t *testing.T) {
			out := filepath.Join(dir, tc.fuse)
			var stdout, stderr bytes.Buffer
			code := run([]string{"--ckpt", ckpt, "--out", out, "--format", "safetensors", "--fuse", tc.fuse}, &stdout, &stderr)
			if tc.want == "" {
				if code != 2 {
					t.Fatalf("exit %d, want 2 (usage): %s", code, stderr.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			f := readSafetensors(t, filepath.Join(out, export.SafetensorsFile))
			if got := f.Metadata[export.MetaFuse]; got != tc.want {
				t.Errorf("fuse metadata %q, want %q", got, tc.want)
			}
		})
	}
}

// fmPreprocess is the preprocessing train records for a 28-pixel student of the
// Fashion-MNIST stores of the tests (mean 0.286, std 0.353).
func fmPreprocess() dataset.Config {
	return dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
}

// tinyCheckpoint saves a one-block fm-tiny student in dir, recording fmPreprocess and no
// class names as train does, and returns it and the file's path.
func tinyCheckpoint(t *testing.T, dir string) (*student.Model, string) {
	t.Helper()
	m, err := student.New(student.Config{Depth: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPreprocess(fmPreprocess(), nil); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "model.ckpt")
	if err := save(m, ckpt); err != nil {
		t.Fatal(err)
	}
	return m, ckpt
}

// oldCheckpoint saves a one-block fm-tiny student as checkpoints were before they recorded
// their preprocessing, and returns the file's path.
func oldCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	m, err := student.New(student.Config{Depth: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "old.ckpt")
	if err := save(m, ckpt); err != nil {
		t.Fatal(err)
	}
	return ckpt
}

// labelStore writes the manifest.json of an empty label store of k classes whose images are
// normalised with mean and std, and returns its folder: all that export reads of a store.
func labelStore(t *testing.T, dir string, k int, mean, std float64, names []string) string {
	t.Helper()
	p := fmPreprocess()
	p.Mean, p.Std = []float64{mean}, []float64{std}
	md := schema.Metadata{SchemaVersion: schema.VersionPlain, NumClasses: k, ClassNames: names, Preprocess: p,
		Views: schema.Views{Count: 1}, Store: schema.StoreConfig{Mode: schema.ModeFull, DType: schema.Float32}}
	mm, err := md.EncodeMap()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"format": store.ManifestFormat, "schema_version": schema.VersionPlain,
		"file_format": store.FormatParquet, "metadata": mm, "rows": 0, "images": 0, "shards": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// onnxMetadata returns the metadata_props (ModelProto field 14: key 1, value 2) of the ONNX
// file at path.
func onnxMetadata(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields := func(b []byte, each func(num protowire.Number, v []byte)) {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				t.Fatalf("%s: bad protobuf", path)
			}
			b = b[n:]
			if typ == protowire.BytesType {
				v, m := protowire.ConsumeBytes(b)
				if m < 0 {
					t.Fatalf("%s: bad protobuf", path)
				}
				each(num, v)
				n = m
			} else if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				t.Fatalf("%s: bad protobuf", path)
			}
			b = b[n:]
		}
	}
	md := map[string]string{}
	fields(raw, func(num protowire.Number, v []byte) {
		if num != 14 {
			return
		}
		var k, val string
		fields(v, func(num protowire.Number, v []byte) {
			switch num {
			case 1:
				k = string(v)
			case 2:
				val = string(v)
			}
		})
		md[k] = val
	})
	return md
}

// readSafetensors reads and parses the safetensors file at path.
func readSafetensors(t *testing.T, path string) *export.File {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := export.ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// save writes m as train does: a training checkpoint of a trainer that took no step.
func save(m *student.Model, path string) error {
	tr, err := student.NewTrainer(m, student.TrainConfig{StepsPerEpoch: 1, Batch: 1})
	if err != nil {
		return err
	}
	return tr.Save(path)
}
