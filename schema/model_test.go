package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/dataset"
)

func TestModelMetadata(t *testing.T) {
	good := `{"resize":36,"crop":32,"interpolation":"bilinear","mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25],"channels":3}`
	tests := []struct {
		name    string
		md      map[string]string
		want    dataset.Config
		names   []string
		ok      bool
		errKey  string // the key the error must name; "" for success
		errText string
	}{
		{name: "both keys", md: map[string]string{KeyPreprocess: good, KeyClassNames: `["x","y"]`},
			want: dataset.Config{Resize: 36, Crop: 32, Interpolation: "bilinear", Mean: []float64{.5, .5, .5},
				Std: []float64{.25, .25, .25}, Channels: 3}, names: []string{"x", "y"}, ok: true},
		{name: "class names only", md: map[string]string{KeyClassNames: ` ["only"] `, "other": "x"}, names: []string{"only"}},
		{name: "no keys", md: map[string]string{"producer": "somebody"}},
		{name: "nil map", md: nil},
		{name: "partial preprocess", md: map[string]string{KeyPreprocess: `{"crop":28}`}, want: dataset.Config{Crop: 28}, ok: true},
		{name: "one channel", md: map[string]string{KeyPreprocess: `{"crop":28,"mean":[0.286],"std":[0.353],"channels":1,"interpolation":"bicubic"}`},
			want: dataset.Config{Crop: 28, Mean: []float64{0.286}, Std: []float64{0.353}, Channels: 1, Interpolation: "bicubic"}, ok: true},

		{name: "decoding flags an exported student records", md: map[string]string{KeyPreprocess: `{"crop":28,"channels":1,"jpeg_draft":true,"exif_transpose":true}`},
			want: dataset.Config{Crop: 28, Channels: 1, Draft: true, EXIFTranspose: true}, ok: true},

		{name: "malformed JSON", md: map[string]string{KeyPreprocess: `{"resize":36,`}, errKey: KeyPreprocess, errText: "unexpected EOF"},
		{name: "not an object", md: map[string]string{KeyPreprocess: `[36,32]`}, errKey: KeyPreprocess, errText: "want an object"},
		{name: "null", md: map[string]string{KeyPreprocess: `null`}, errKey: KeyPreprocess, errText: "want an object"},
		{name: "unknown field", md: map[string]string{KeyPreprocess: `{"interp":"bilinear"}`}, errKey: KeyPreprocess, errText: `unknown field "interp"`},
		{name: "trailing data", md: map[string]string{KeyPreprocess: `{"crop":1} {}`}, errKey: KeyPreprocess, errText: "trailing data"},
		{name: "string for a number", md: map[string]string{KeyPreprocess: `{"crop":"224"}`}, errKey: KeyPreprocess, errText: "crop"},
		{name: "negative resize", md: map[string]string{KeyPreprocess: `{"resize":-1}`}, errKey: KeyPreprocess, errText: "resize -1"},
		{name: "absurd crop", md: map[string]string{KeyPreprocess: `{"crop":1000000}`}, errKey: KeyPreprocess, errText: "crop 1000000"},
		{name: "unknown interpolation", md: map[string]string{KeyPreprocess: `{"interpolation":"nearest"}`}, errKey: KeyPreprocess, errText: `"nearest"`},
		{name: "two channels", md: map[string]string{KeyPreprocess: `{"channels":2}`}, errKey: KeyPreprocess, errText: "channels 2"},
		{name: "mean length differs from channels", md: map[string]string{KeyPreprocess: `{"channels":3,"mean":[0.5]}`}, errKey: KeyPreprocess, errText: "mean has 1 values for 3 channels"},
		{name: "mean and std lengths differ", md: map[string]string{KeyPreprocess: `{"mean":[0.5],"std":[1,1,1]}`}, errKey: KeyPreprocess, errText: "mean has 1 values but std 3"},
		{name: "zero std", md: map[string]string{KeyPreprocess: `{"std":[0.2,0,0.2]}`}, errKey: KeyPreprocess, errText: "std[1] = 0"},
		{name: "good preprocess, bad names", md: map[string]string{KeyPreprocess: good, KeyClassNames: `"a,b"`}, errKey: KeyClassNames, errText: "want an array"},
		{name: "names not strings", md: map[string]string{KeyClassNames: `["a", 2]`}, errKey: KeyClassNames, errText: "cannot unmarshal number"},
		{name: "empty names", md: map[string]string{KeyClassNames: `[]`}, errKey: KeyClassNames, errText: "empty list"},
		{name: "empty name", md: map[string]string{KeyClassNames: `["a", ""]`}, errKey: KeyClassNames, errText: "class 1 has an empty name"},
		{name: "duplicate names", md: map[string]string{KeyClassNames: `["cat","dog","cat"]`}, errKey: KeyClassNames, errText: `classes 0 and 2 are both named "cat"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, names, ok, err := ModelMetadata(tt.md)
			if tt.errKey != "" {
				if !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), tt.errKey+": ") ||
					!strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %v: want ErrMetadata naming %s and %q", err, tt.errKey, tt.errText)
				}
				if ok || names != nil || !reflect.DeepEqual(p, dataset.Config{}) {
					t.Errorf("an error came with values: %+v %q %v", p, names, ok)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || !reflect.DeepEqual(p, tt.want) || !reflect.DeepEqual(names, tt.names) {
				t.Errorf("got %+v %q %v, want %+v %q %v", p, names, ok, tt.want, tt.names, tt.ok)
			}
		})
	}
}

// FuzzModelMetadata: any bytes under either key give a valid result or ErrMetadata
// naming the key, never a panic; a valid result survives a round trip through JSON.
func FuzzModelMetadata(f *testing.F) {
	seeds, err := filepath.Glob("testdata/model/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/model: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(s), "class_names") {
			f.Add("", string(b))
		} else {
			f.Add(string(b), "")
		}
	}
	f.Fuzz(func(t *testing.T, pre, names string) {
		// An empty string stands for a key the model does not have.
		md := map[string]string{}
		if pre != "" {
			md[KeyPreprocess] = pre
		}
		if names != "" {
			md[KeyClassNames] = names
		}
		p, cls, ok, err := ModelMetadata(md)
		if err != nil {
			if !errors.Is(err, ErrMetadata) || (!strings.Contains(err.Error(), KeyPreprocess) &&
				!strings.Contains(err.Error(), KeyClassNames)) {
				t.Fatalf("error %v is not ErrMetadata naming a key", err)
			}
			return
		}
		if ok != (pre != "") || (len(cls) > 0) != (names != "") {
			t.Fatalf("no error but ok %v, %d names for %q, %q", ok, len(cls), pre, names)
		}
		for _, s := range p.Std {
			if !(s > 0) {
				t.Fatalf("std %v accepted", p.Std)
			}
		}
		// A valid result, written back as JSON, reads back the same.
		md2 := map[string]string{}
		if ok {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			md2[KeyPreprocess] = string(b)
		}
		if cls != nil {
			b, err := json.Marshal(cls)
			if err != nil {
				t.Fatal(err)
			}
			md2[KeyClassNames] = string(b)
		}
		p2, cls2, ok2, err := ModelMetadata(md2)
		if err != nil || ok2 != ok || !reflect.DeepEqual(p, p2) || !reflect.DeepEqual(cls, cls2) {
			t.Fatalf("round trip of %+v %q through %q: %+v %q %v", p, cls, md2, p2, cls2, err)
		}
	})
}
