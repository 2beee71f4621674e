package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/student"
)

// timmDeiTDistilled lists the state-dict keys and shapes of timm's VisionTransformerDistilled
// (the class of deit_tiny_distilled_patch16_224) with N patches, C channels, patch side P,
// width D, depth L, MLP width M and K classes — written out here rather than taken from
// student/, so that a renamed or reshaped parameter there fails the tests.
func timmDeiTDistilled(N, C, P, D, L, M, K int) map[string][]int {
	keys := map[string][]int{
		"cls_token":               {1, 1, D},
		"dist_token":              {1, 1, D},
		"pos_embed":               {1, N + 2, D},
		"patch_embed.proj.weight": {D, C, P, P},
		"patch_embed.proj.bias":   {D},
		"norm.weight":             {D},
		"norm.bias":               {D},
		"head.weight":             {K, D},
		"head.bias":               {K},
		"head_dist.weight":        {K, D},
		"head_dist.bias":          {K},
	}
	for i := 0; i < L; i++ {
		for k, s := range map[string][]int{
			"norm1.weight": {D}, "norm1.bias": {D},
			"attn.qkv.weight": {3 * D, D}, "attn.qkv.bias": {3 * D},
			"attn.proj.weight": {D, D}, "attn.proj.bias": {D},
			"norm2.weight": {D}, "norm2.bias": {D},
			"mlp.fc1.weight": {M, D}, "mlp.fc1.bias": {M},
			"mlp.fc2.weight": {D, M}, "mlp.fc2.bias": {D},
		} {
			keys[fmt.Sprintf("blocks.%d.%s", i, k)] = s
		}
	}
	return keys
}

// checkKeys compares a file's tensors with timm's keys and shapes.
func checkKeys(t *testing.T, f *File, want map[string][]int) {
	t.Helper()
	got := map[string][]int{}
	for _, tn := range f.Tensors {
		got[tn.Name] = tn.Shape
	}
	for k, s := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(s) {
			t.Errorf("key %s: shape %v, timm has %v", k, got[k], s)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("key %s is not in timm's state dict", k)
		}
	}
}

// TestSafetensorsDeiTTiny: the deit-tiny preset writes exactly the keys and shapes of timm's
// deit_tiny_distilled_patch16_224 at its defaults (224×224×3, P=16, D=192, 12 blocks, 1000
// classes), so timm.create_model('deit_tiny_distilled_patch16_224') loads it as is.
func TestSafetensorsDeiTTiny(t *testing.T) {
	c, err := student.Preset("deit-tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := student.New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	f := roundTrip(t, m)
	checkKeys(t, f, timmDeiTDistilled(14*14, 3, 16, 192, 12, 768, 1000))
}

func TestSafetensorsRoundTrip(t *testing.T) {
	m := testModel(t, student.Config{}, 21)
	pre := &dataset.Config{Resize: 28, Crop: 28, Interpolation: "bilinear", Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1}
	var buf bytes.Buffer
	if err := Safetensors(&buf, m, Options{Preprocess: pre, Fuse: student.FuseLogits}); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if n := binary.LittleEndian.Uint64(raw); (8+n)%headerAlign != 0 {
		t.Errorf("data starts at byte %d, not %d-aligned", 8+n, headerAlign)
	}
	f, err := ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}

	// timm: img_size=28, patch_size=4, in_chans=1, embed_dim=64, depth=4, num_heads=4,
	// num_classes=10 (mlp_ratio 4).
	checkKeys(t, f, timmDeiTDistilled(7*7, 1, 4, 64, 4, 256, 10))
	for _, p := range m.Params() {
		tn, ok := f.Tensor(p.Name)
		if !ok {
			t.Fatalf("no tensor %s", p.Name)
		}
		if !reflect.DeepEqual(tn.Data, p.Data) {
			t.Errorf("%s: values differ after the round trip", p.Name)
		}
	}
	for k, v := range map[string]string{"format": "pt", MetaFuse: string(student.FuseLogits),
		schema.KeyPreprocess: `{"resize":28,"crop":28,"interpolation":"bilinear","mean":[0.286],"std":[0.353],"channels":1}`} {
		if f.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, f.Metadata[k], v)
		}
	}

	// The model rebuilt from the file computes what the original does, bit for bit.
	m2, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	x := testImages(m.Config(), 3, 9)
	c1, d1, err := m.Infer(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	c2, d2, err := m2.Infer(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c1, c2) || !reflect.DeepEqual(d1, d2) {
		t.Error("the model read back gives other logits")
	}
	// And writes the same bytes again.
	var again bytes.Buffer
	if err := Safetensors(&again, m2, Options{Preprocess: pre, Fuse: student.FuseLogits}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), raw) {
		t.Error("re-exporting the model read back gives other bytes")
	}
}

// TestSafetensorsPlainViT: without the distillation token the keys are timm's
// deit_tiny_patch16_224 (no dist_token, no head_dist; pos_embed one row shorter).
func TestSafetensorsPlainViT(t *testing.T) {
	m := testModel(t, student.Config{NoDistToken: true, Depth: 1}, 22)
	f := roundTrip(t, m)
	for _, k := range []string{"dist_token", "head_dist.weight", "head_dist.bias"} {
		if _, ok := f.Tensor(k); ok {
			t.Errorf("plain ViT has %s", k)
		}
	}
	if p, _ := f.Tensor("pos_embed"); fmt.Sprint(p.Shape) != "[1 50 64]" {
		t.Errorf("pos_embed %v, want [1 50 64]", p.Shape)
	}
	if _, err := f.Model(); err != nil {
		t.Error(err)
	}
}

// stFile assembles a safetensors file from a header string and n data bytes.
func stFile(header string, n int) []byte {
	b := make([]byte, 8, 8+len(header)+n)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func TestReadSafetensorsRefuses(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than the header length"},
		{"header past end", stFile(`{}`, 0)[:9], "header length 2"},
		{"not an object", stFile(`[]`, 0), "not a JSON object"},
		{"bad json", stFile(`{"a":`, 0), "tensor \"a\""},
		{"dtype", stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 4), `"F16"; only F32`},
		{"offset past data", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "data_offsets [0 8] for 4 data bytes"},
		{"shape vs bytes", stFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12 bytes, offsets give 8"},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "shape [-1]"},
		{"gap", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `"a" starts at byte 4`},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `starts at byte 4, the previous ends at 8`},
		{"trailing data", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), "tensors end at byte 4 of 8"},
		{"duplicate", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `names "a" twice`},
		{"junk after header", stFile(`{} x`, 0), "after its JSON object"},
		{"metadata not strings", stFile(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSafetensors(tc.data)
			if !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrSafetensors with %q", err, tc.want)
			}
		})
	}
	// A well-formed file that is not a deitkd export: read, but no Model.
	f, err := ReadSafetensors(stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    `, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Model(); !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), MetaConfig) {
		t.Errorf("Model of a foreign file: err %v, want ErrSafetensors naming %s", err, MetaConfig)
	}
}

// TestModelRefusesMismatch: a file whose tensors do not fit its own config is refused with the
// tensor's name.
func TestModelRefusesMismatch(t *testing.T) {
	m := testModel(t, student.Config{Depth: 1}, 23)
	f := roundTrip(t, m)
	f.Tensors[len(f.Tensors)-1].Name = "head_extra.bias"
	if _, err := f.Model(); !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), "no tensor head_dist.bias") {
		t.Errorf("renamed tensor: err %v", err)
	}
	f.Metadata[MetaConfig] = `{"depth":2}`
	if _, err := f.Model(); !errors.Is(err, ErrSafetensors) || !strings.Contains(err.Error(), "tensors, the model has") {
		t.Errorf("config of another depth: err %v", err)
	}
}

// FuzzReadSafetensors: any bytes give a File or ErrSafetensors, never a panic, and every
// tensor of a File holds as many values as its shape says. The seeds are small (a 6 KB
// export): the 0.8 MB fixture would make each new input's minimisation take the full minute.
func FuzzReadSafetensors(f *testing.F) {
	m, err := student.New(student.Config{Dim: 8, Heads: 2, Depth: 1, ImageSize: 8, Classes: 3}, 1)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Safetensors(&buf, m, Options{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4))
	f.Add(stFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ReadSafetensors(data)
		if err != nil {
			if !errors.Is(err, ErrSafetensors) {
				t.Fatalf("error %v is not ErrSafetensors", err)
			}
			return
		}
		for _, tn := range file.Tensors {
			n := 1
			for _, s := range tn.Shape {
				n *= s
			}
			if n != len(tn.Data) {
				t.Fatalf("tensor %s: shape %v with %d values", tn.Name, tn.Shape, len(tn.Data))
			}
		}
	})
}

// roundTrip writes m as safetensors with the default options and reads the bytes back.
func roundTrip(t *testing.T, m *student.Model) *File {
	t.Helper()
	var buf bytes.Buffer
	if err := Safetensors(&buf, m, Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadSafetensors(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}
