package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestViewsFrom: the source store of a --views-from store survives a round trip under its own
// key, a store without one writes no such key, Check refuses a bad value naming the field, and
// Diff names the key when a run takes its views from another store or from none.
func TestViewsFrom(t *testing.T) {
	plain := testMetadata(ModeFull, Float32)
	enc, err := plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if enc.FindKey(KeyViewsFrom) >= 0 {
		t.Fatalf("metadata without a source store has %s", KeyViewsFrom)
	}
	sum := strings.Repeat("ab", 32)
	from := testMetadata(ModeFull, Float32)
	from.ViewsFrom = &ViewsFrom{Path: "/data/labels-28", ManifestSHA256: sum}
	enc, err = from.Encode()
	if err != nil {
		t.Fatal(err)
	}
	i := enc.FindKey(KeyViewsFrom)
	if want := `{"path":"/data/labels-28","manifest_sha256":"` + sum + `"}`; i < 0 || enc.Values()[i] != want {
		t.Fatalf("%s = %v, want %s", KeyViewsFrom, enc.Values(), want)
	}
	got, err := Decode(enc.Keys(), enc.Values())
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(got, from); err != nil || *got.ViewsFrom != *from.ViewsFrom {
		t.Fatalf("round trip: %v, %+v", err, got.ViewsFrom)
	}
	other := testMetadata(ModeFull, Float32)
	other.ViewsFrom = &ViewsFrom{Path: "/data/labels-28", ManifestSHA256: strings.Repeat("cd", 32)}
	for _, tc := range []struct {
		name       string
		store, run Metadata
		want       string
	}{
		{"other source", from, other, KeyViewsFrom + `: store has {"path":"/data/labels-28","manifest_sha256":"abab`},
		{"source then none", from, plain, KeyViewsFrom + `: store has {"path"`},
		{"none then source", plain, from, KeyViewsFrom + `: store has null`},
	} {
		if err := Diff(tc.store, tc.run); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Diff = %v, want ErrMismatch with %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct{ val, want string }{
		{`{"path":"","manifest_sha256":"` + sum + `"}`, KeyViewsFrom + ".path: empty"},
		{`{"path":"x","manifest_sha256":"ABC"}`, KeyViewsFrom + `.manifest_sha256: "ABC" is not a hex sha256`},
		{`{"path":"x","manifest_sha256":"` + sum + `","more":1}`, "unknown field"},
		{`null`, KeyViewsFrom + ": null"},
	} {
		vals := append([]string(nil), enc.Values()...)
		vals[i] = tc.val
		if _, err := Decode(enc.Keys(), vals); !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want ErrMetadata with %q", tc.val, err, tc.want)
		}
	}
}
