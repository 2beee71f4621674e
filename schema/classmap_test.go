package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestClassMap: a class map survives a round trip under its own key, a store without one writes
// no such key (its metadata is what it was before the key existed), Check rejects bad entries
// naming the key, and Diff names the key when a run wants another map or none.
func TestClassMap(t *testing.T) {
	plain := testMetadata(ModeFull, Float32)
	enc, err := plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if enc.FindKey(KeyClassMap) >= 0 {
		t.Fatalf("metadata without a class map has %s", KeyClassMap)
	}
	mapped := testMetadata(ModeFull, Float32)
	mapped.ClassMap = []ClassMapEntry{{"dog", 4}, {`d\xf6g`, 0}, {"puppy", 4}}
	enc, err = mapped.Encode()
	if err != nil {
		t.Fatal(err)
	}
	i := enc.FindKey(KeyClassMap)
	if i < 0 {
		t.Fatalf("no %s in %v", KeyClassMap, enc.Keys())
	}
	if want := `[{"folder":"dog","class":4},{"folder":"d\\xf6g","class":0},{"folder":"puppy","class":4}]`; enc.Values()[i] != want {
		t.Fatalf("%s = %s, want %s", KeyClassMap, enc.Values()[i], want)
	}
	got, err := Decode(enc.Keys(), enc.Values())
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(got, mapped); err != nil {
		t.Fatal(err)
	}
	other := mapped
	other.ClassMap = []ClassMapEntry{{"dog", 4}, {`d\xf6g`, 1}, {"puppy", 4}}
	for _, tc := range []struct {
		name       string
		store, run Metadata
		want       string
	}{
		{"other map", mapped, other, KeyClassMap + `[1]: store has {"folder":"d\\xf6g","class":0}, run wants {"folder":"d\\xf6g","class":1}`},
		{"map then none", mapped, plain, KeyClassMap + ": store has 3 folders, run wants no class map"},
		{"none then map", plain, mapped, KeyClassMap + ": store has no class map, run wants 3 folders"},
		{"fewer", mapped, func() Metadata { m := mapped; m.ClassMap = m.ClassMap[:2]; return m }(), KeyClassMap + ": store has 3 folders, run wants 2 folders"},
	} {
		if err := Diff(tc.store, tc.run); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Diff = %v, want ErrMismatch with %q", tc.name, err, tc.want)
		}
	}
	bad := mapped
	bad.ClassMap = []ClassMapEntry{{"a\xff", 1}} // json would decode it as U+FFFD: Check guards writers
	if err := bad.Check(); !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), KeyClassMap+": entry 0: folder \"a\\xff\" is not valid UTF-8") {
		t.Errorf("Check = %v, want ErrMetadata naming %s", err, KeyClassMap)
	}
	for _, tc := range []struct {
		name, val, want string
	}{
		{"class too big", `[{"folder":"a","class":5}]`, "class 5 outside 0..4"},
		{"class negative", `[{"folder":"a","class":-1}]`, "class -1 outside"},
		{"duplicate folder", `[{"folder":"a","class":1},{"folder":"a","class":2}]`, `"a" is entries 0 and 1`},
		{"empty folder", `[{"folder":"","class":1}]`, "empty folder name"},
		{"empty", `[]`, "empty"},
		{"null", `null`, "null"},
		{"unknown field", `[{"folder":"a","class":1,"x":1}]`, "unknown field"},
	} {
		keys := append([]string(nil), enc.Keys()...)
		vals := append([]string(nil), enc.Values()...)
		vals[i] = tc.val
		if _, err := Decode(keys, vals); !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), KeyClassMap) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %v, want ErrMetadata naming %s with %q", tc.name, err, KeyClassMap, tc.want)
		}
	}
}
