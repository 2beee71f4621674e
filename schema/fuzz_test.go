package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds the metadata decoder a JSON object of key → raw value
// (the manifest's mirror form); seeds come from testdata/. Whatever decodes
// must pass Check and survive a re-encode unchanged.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "metadata", "*.json"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return
		}
		md, err := DecodeMap(m)
		if err != nil {
			return
		}
		if err := md.Check(); err != nil {
			t.Fatalf("decoded metadata fails Check: %v", err)
		}
		again, err := md.EncodeMap()
		if err != nil {
			t.Fatal(err)
		}
		md2, err := DecodeMap(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if err := Diff(md, md2); err != nil {
			t.Fatalf("re-encode changed metadata: %v", err)
		}
	})
}
