package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/deitkd/deitkd/dataset"
)

func testMetadata(mode Mode, dtype DType) Metadata {
	md := Metadata{
		SchemaVersion: VersionPlain,
		Teacher:       Teacher{File: "resnet.onnx", SHA256: strings.Repeat("ab", 32), InputName: "input", InputShape: []int64{-1, 3, 224, 224}, OutputName: "logits"},
		NumClasses:    5,
		ClassNames:    []string{"a", "b", "c", "d", "e\"quoted\""},
		Preprocess:    dataset.Config{Resize: 256, Crop: 224, Interpolation: "bilinear", Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}, Channels: 3},
		Views:         Views{Count: 4, Seed: 7, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{0.75, 4.0 / 3}, FlipP: 0.5},
		Store:         StoreConfig{Mode: mode, DType: dtype},
		Dataset:       Dataset{Name: "tiny", ImageCount: 12, IDHash: strings.Repeat("cd", 32)},
		CreatedBy:     "deitkd test",
	}
	if mode == ModeTopK {
		md.Store.K = 3
	}
	return md
}

func TestMetadataRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  Mode
		dtype DType
	}{
		{"full-float32", ModeFull, Float32},
		{"full-float16", ModeFull, Float16},
		{"topk-float32", ModeTopK, Float32},
		{"topk-float16", ModeTopK, Float16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := testMetadata(tc.mode, tc.dtype)
			s, err := NewSchema(md)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromSchema(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := Diff(got, md); err != nil {
				t.Fatalf("round trip differs: %v", err)
			}
			if got.CreatedBy != md.CreatedBy {
				t.Fatalf("created_by %q, want %q", got.CreatedBy, md.CreatedBy)
			}
			if err := Validate(s, md); err != nil {
				t.Fatal(err)
			}
			m, err := md.EncodeMap()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeMap(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := Diff(back, md); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestColumns(t *testing.T) {
	s, _ := NewSchema(testMetadata(ModeTopK, Float16))
	want := []string{ColImageID, ColImageIndex, ColLabel, ColView, ColCrop, ColFlip, ColTeacherHard, ColTopKIndex, ColTopKLogit, ColLogSumExp}
	if s.NumFields() != len(want) {
		t.Fatalf("%d columns, want %d", s.NumFields(), len(want))
	}
	for i, n := range want {
		if s.Field(i).Name != n {
			t.Errorf("column %d = %q, want %q", i, s.Field(i).Name, n)
		}
	}
	if !arrow.TypeEqual(s.Field(8).Type, arrow.FixedSizeListOfNonNullable(3, arrow.FixedWidthTypes.Float16)) {
		t.Errorf("topk_logit type %s", s.Field(8).Type)
	}
	f, _ := NewSchema(testMetadata(ModeFull, Float32))
	if f.Field(7).Name != ColTeacherLogits || !arrow.TypeEqual(f.Field(7).Type, arrow.FixedSizeListOfNonNullable(5, arrow.PrimitiveTypes.Float32)) {
		t.Errorf("full column 7 = %s %s", f.Field(7).Name, f.Field(7).Type)
	}
}

func TestDiffNamesKey(t *testing.T) {
	base := testMetadata(ModeTopK, Float16)
	for _, tc := range []struct {
		name   string
		change func(*Metadata)
		want   string
	}{
		{"crop", func(m *Metadata) { m.Preprocess.Crop = 256 }, "deitkd.preprocess.crop: store has 224, run wants 256"},
		{"mean", func(m *Metadata) { m.Preprocess.Mean[0] = 0.5 }, "deitkd.preprocess.mean: store has [0.485,0.456,0.406], run wants [0.5,0.456,0.406]"},
		{"teacher-sha", func(m *Metadata) { m.Teacher.SHA256 = "00" }, "deitkd.teacher.sha256"},
		{"k", func(m *Metadata) { m.Store.K = 4 }, "deitkd.store.k: store has 3, run wants 4"},
		{"dtype", func(m *Metadata) { m.Store.DType = Float32 }, `deitkd.store.dtype: store has "float16", run wants "float32"`},
		{"views-seed", func(m *Metadata) { m.Views.Seed = 8 }, "deitkd.views.seed"},
		{"class-names", func(m *Metadata) { m.ClassNames = []string{"a", "b", "c", "d", "x"} }, "deitkd.class_names"},
		{"dataset", func(m *Metadata) { m.Dataset.IDHash = "ff" }, "deitkd.dataset.id_hash"},
		{"dataset-extensions", func(m *Metadata) { m.Dataset.Extensions = []string{".gif", ".jpg"} },
			`deitkd.dataset.extensions: store has null, run wants [".gif",".jpg"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := testMetadata(ModeTopK, Float16)
			tc.change(&run)
			err := Diff(base, run)
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Diff = %v, want ErrMismatch containing %q", err, tc.want)
			}
		})
	}
	t.Run("created_by-ignored", func(t *testing.T) {
		run := testMetadata(ModeTopK, Float16)
		run.CreatedBy = "deitkd v9"
		if err := Diff(base, run); err != nil {
			t.Fatal(err)
		}
	})
}

func TestValidateNamesFirstDifference(t *testing.T) {
	md := testMetadata(ModeFull, Float16)
	good, _ := NewSchema(md)
	meta := good.Metadata()
	for _, tc := range []struct {
		name   string
		schema *arrow.Schema
		want   string
		is     error
	}{
		{"dtype", func() *arrow.Schema { m := md; m.Store.DType = Float32; s, _ := NewSchema(m); return s }(), "column \"teacher_logits\"", ErrMismatch},
		{"renamed", arrow.NewSchema(append([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, good.Fields()[1:]...), &meta), `column 0: file has "id", want "image_id"`, ErrMismatch},
		{"missing-column", arrow.NewSchema(good.Fields()[:7], &meta), `column 7 "teacher_logits": missing`, ErrMismatch},
		{"extra-column", arrow.NewSchema(append(good.Fields(), arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int8}), &meta), `"x": not in the contract`, ErrMismatch},
		{"version", func() *arrow.Schema {
			m := arrow.NewMetadata(meta.Keys(), append([]string{"3"}, meta.Values()[1:]...))
			return arrow.NewSchema(good.Fields(), &m)
		}(), "deitkd.schema_version is 3", ErrVersion},
		{"no-metadata", arrow.NewSchema(good.Fields(), nil), "deitkd.schema_version: missing", ErrMetadata},
		{"metadata-key", func() *arrow.Schema { m := md; m.Views.Count = 2; s, _ := NewSchema(m); return s }(), "deitkd.views.count: store has 2, run wants 4", ErrMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.schema, md)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	md := testMetadata(ModeTopK, Float32)
	enc, _ := md.Encode()
	set := func(key, val string) ([]string, []string) {
		keys := append([]string(nil), enc.Keys()...)
		vals := append([]string(nil), enc.Values()...)
		for i, k := range keys {
			if k == key {
				vals[i] = val
				return keys, vals
			}
		}
		return append(keys, key), append(vals, val)
	}
	for _, tc := range []struct{ name, key, val, want string }{
		{"unknown-field", KeyStore, `{"mode":"topk","k":3,"dtype":"float32","extra":1}`, "deitkd.store"},
		{"bad-mode", KeyStore, `{"mode":"half","k":3,"dtype":"float32"}`, "deitkd.store.mode"},
		{"k-too-big", KeyStore, `{"mode":"topk","k":6,"dtype":"float32"}`, "deitkd.store.k"},
		{"bad-dtype", KeyStore, `{"mode":"topk","k":3,"dtype":"int8"}`, "deitkd.store.dtype"},
		{"names-count", KeyClassNames, `["a"]`, "deitkd.class_names"},
		{"unknown-key", "deitkd.colour", `1`, "deitkd.colour: unknown key"},
		{"trailing", KeyNumClasses, `5 6`, "deitkd.num_classes: trailing"},
		{"not-json", KeyViews, `{`, "deitkd.views"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, v := set(tc.key, tc.val)
			_, err := Decode(k, v)
			if !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want ErrMetadata containing %q", err, tc.want)
			}
		})
	}
}

// TestDatasetExtensions: the extensions a folder was listed with survive a round trip, and the
// default (nil) writes no key at all, so such a store's metadata is what it was before the
// field existed and older builds still read it.
func TestDatasetExtensions(t *testing.T) {
	md := testMetadata(ModeFull, Float32)
	m, err := md.EncodeMap()
	if err != nil {
		t.Fatal(err)
	}
	if s := string(m[KeyDataset]); strings.Contains(s, "extensions") {
		t.Fatalf("default extensions written: %s", s)
	}
	md.Dataset.Extensions = []string{"*"}
	if m, err = md.EncodeMap(); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMap(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(back, md); err != nil || len(back.Dataset.Extensions) != 1 || back.Dataset.Extensions[0] != "*" {
		t.Fatalf("round trip: %v, extensions %q", err, back.Dataset.Extensions)
	}
}

// TestVersion2 is the augmented store's contract: version 2 with deitkd.augment (round trip,
// Diff naming a differing setting), the replay columns appended nullable, and each half
// without the other refused naming the key.
func TestVersion2(t *testing.T) {
	ra, err := dataset.ParseRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	md := testMetadata(ModeFull, Float32)
	md.SchemaVersion = Version
	md.Augment = &dataset.AugmentConfig{RandAugment: &ra, EraseProb: 0.25, Mix: dataset.MixConfig{MixupAlpha: 0.8, CutMixAlpha: 1, Prob: 1, SwitchProb: 0.5}}
	m, err := md.EncodeMap()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMap(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(back, md); err != nil {
		t.Fatal(err)
	}
	other := md
	a := *md.Augment
	a.EraseProb = 0.5
	other.Augment = &a
	if err := Diff(md, other); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "deitkd.augment.erase_prob") {
		t.Errorf("Diff of erase probabilities: %v", err)
	}
	s, err := NewSchema(md)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewSchema(testMetadata(ModeFull, Float32))
	want := []string{ColRandAugment, ColEraseBox, ColEraseSeed, ColMixIndex, ColMixView, ColMixLambda, ColMixBox}
	if s.NumFields() != plain.NumFields()+len(want) {
		t.Fatalf("%d columns, want %d + %d", s.NumFields(), plain.NumFields(), len(want))
	}
	for i, n := range want {
		f := s.Field(plain.NumFields() + i)
		if f.Name != n || !f.Nullable {
			t.Errorf("column %d = %q nullable %v, want %q nullable", plain.NumFields()+i, f.Name, f.Nullable, n)
		}
	}
	if err := Validate(s, md); err != nil {
		t.Error(err)
	}
	if err := Validate(plain, md); !errors.Is(err, ErrMismatch) {
		t.Errorf("a version-1 file against version-2 metadata: %v", err)
	}
	noAug := md
	noAug.Augment = nil
	if err := noAug.Check(); err == nil || !strings.Contains(err.Error(), KeyAugment) {
		t.Errorf("version 2 without %s: %v", KeyAugment, err)
	}
	v1 := md
	v1.SchemaVersion = VersionPlain
	if err := v1.Check(); err == nil || !strings.Contains(err.Error(), KeySchemaVersion) {
		t.Errorf("version 1 with %s: %v", KeyAugment, err)
	}
	one := md
	one.Views.Count = 1
	if err := one.Check(); err == nil || !strings.Contains(err.Error(), "views.count") {
		t.Errorf("an augmented store of one view: %v", err)
	}
}
