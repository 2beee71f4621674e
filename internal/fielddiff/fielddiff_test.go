package fielddiff

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

type inner struct {
	Crop int       `json:"crop"`
	Mean []float64 `json:"mean"`
}

type outer struct {
	Name  string  `json:"name"`
	In    inner   `json:"preprocess"`
	Ptr   *inner  `json:"ptr,omitempty"`
	Skip  int     `json:"-"`
	Plain float64 // no tag: its Go name
	Any   any     `json:"any"`
}

func TestFirstAndAll(t *testing.T) {
	a := outer{Name: "x", In: inner{Crop: 28, Mean: []float64{0.5}}, Skip: 1, Plain: 1, Any: map[string]any{"k": 1.0}}
	for _, tc := range []struct {
		name string
		edit func(*outer)
		want []Field
	}{
		{"equal", func(*outer) {}, nil},
		{"json-ignored field", func(o *outer) { o.Skip = 2 }, nil},
		{"nested field by JSON name", func(o *outer) { o.In.Crop = 32 }, []Field{{"md.preprocess.crop", 28, 32}}},
		{"slices whole", func(o *outer) { o.In.Mean = []float64{0.5, 0.5} }, []Field{{"md.preprocess.mean", []float64{0.5}, []float64{0.5, 0.5}}}},
		{"declaration order", func(o *outer) { o.Plain, o.Name = 2, "y" }, []Field{{"md.name", "x", "y"}, {"md.Plain", 1.0, 2.0}}},
		{"pointer whole", func(o *outer) { o.Ptr = &inner{} }, []Field{{"md.ptr", (*inner)(nil), &inner{}}}},
		{"object in an interface", func(o *outer) { o.Any = map[string]any{"k": 2.0, "new": true} }, []Field{{"md.any.k", 1.0, 2.0}, {"md.any.new", nil, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := a
			b.In.Mean = append([]float64(nil), a.In.Mean...)
			tc.edit(&b)
			got := All("md", a, b)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("All = %#v, want %#v", got, tc.want)
			}
			f, ok := First("md", a, b)
			if ok != (len(tc.want) > 0) || (ok && !reflect.DeepEqual(f, tc.want[0])) {
				t.Fatalf("First = %#v, %v", f, ok)
			}
		})
	}
}

// TestJSONObjects: two JSON documents decoded into map[string]any, as a resume compares run
// files: sorted keys, a key one side lacks is nil, floats as written.
func TestJSONObjects(t *testing.T) {
	var a, b map[string]any
	json.Unmarshal([]byte(`{"z":1,"recipe":{"lr":0.001,"wd":0.05},"seeds":[1,2]}`), &a)
	json.Unmarshal([]byte(`{"recipe":{"lr":0.002,"wd":0.05,"clip":0},"seeds":[1,3],"z":1}`), &b)
	got := All("", a, b)
	want := []Field{{"recipe.clip", nil, 0.0}, {"recipe.lr", 0.001, 0.002}, {"seeds", []any{1.0, 2.0}, []any{1.0, 3.0}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("All = %#v, want %#v", got, want)
	}
}

func TestText(t *testing.T) {
	for v, want := range map[any]string{math.NaN(): "NaN", math.Inf(-1): "-Inf", "a<b": `"a<b"`, 0.1: "0.1"} {
		if got := Text(v); got != want {
			t.Errorf("Text(%v) = %s, want %s", v, got, want)
		}
	}
}
