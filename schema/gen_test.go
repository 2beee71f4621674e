package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSeedsCurrent keeps the fuzz seeds in testdata/metadata equal to what
// this build encodes; run with DEITKD_UPDATE=1 to rewrite them.
func TestSeedsCurrent(t *testing.T) {
	for name, md := range map[string]Metadata{
		"topk-float16.json": testMetadata(ModeTopK, Float16),
		"full-float32.json": testMetadata(ModeFull, Float32),
	} {
		m, err := md.EncodeMap()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		p := filepath.Join("testdata", "metadata", name)
		if os.Getenv("DEITKD_UPDATE") == "1" {
			if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		disk, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var mm map[string]json.RawMessage
		if err := json.Unmarshal(disk, &mm); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMap(mm)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := Diff(got, md); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}
