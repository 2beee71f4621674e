package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
)

var manifestSeeds = filepath.Join("..", "testdata", "store", "manifest")

// TestManifestSeeds keeps the fuzz seeds equal to manifests this build
// writes (a whole store and one writer of a split store); DEITKD_UPDATE=1
// rewrites them.
func TestManifestSeeds(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 4, 2, 2, 12)
	for _, tc := range []struct {
		name string
		spec ShardSpec
	}{{"whole.json", ShardSpec{}}, {"writer-1-of-2.json", ShardSpec{Index: 1, Count: 2}}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{ShardRows: 6, Shard: tc.spec}
			w, err := OpenWriter(dir, md, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i := int64(0); i < 12; i++ {
				if !w.Owns(i) {
					continue
				}
				if i == 5 {
					w.Fail(Failure{ImageIndex: i, ImageID: "x", Stage: "decode", Err: "bad"})
					continue
				}
				for _, r := range synthRows(1, i, 4, 2) {
					if err := w.Write(r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, manifestName(tc.spec)))
			if err != nil {
				t.Fatal(err)
			}
			seed := filepath.Join(manifestSeeds, tc.name)
			if os.Getenv("DEITKD_UPDATE") == "1" {
				os.MkdirAll(manifestSeeds, 0o755)
				if err := os.WriteFile(seed, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			disk, err := os.ReadFile(seed)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(disk)
			if err != nil {
				t.Fatalf("%s: %v", seed, err)
			}
			if err := schema.Diff(m.Meta(), md); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseManifestRejects(t *testing.T) {
	disk, err := os.ReadFile(filepath.Join(manifestSeeds, "whole.json"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := ParseManifest(disk)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		is             error
	}{
		{"bad-sha", good.Shards[0].SHA256, "Z" + good.Shards[0].SHA256[1:], ErrManifest},
		{"format", `"deitkd-labels"`, `"other"`, ErrManifest},
		{"version", `"schema_version": 1`, `"schema_version": 3`, schema.ErrVersion},
		{"path-escape", `"file": "part-00000.parquet"`, `"file": "../part-00000.parquet"`, ErrManifest},
		{"totals", `"rows": 22,`, `"rows": 23,`, ErrManifest},
		{"unknown-key", `"format"`, `"colour": 1, "format"`, ErrManifest},
		{"metadata", `"deitkd.num_classes": 4`, `"deitkd.num_classes": 3`, ErrManifest},
		{"failure-path", `"file": "failures/failures.parquet"`, `"file": "/etc/passwd"`, ErrManifest},
		{"part-number-range", `"file": "part-00000.parquet"`, `"file": "part-99999999999999999999.parquet"`, ErrManifest},
		{"writer-of-none", `"file": "part-00000.parquet"`, `"file": "part-0-of-0-00000.parquet"`, ErrManifest},
		{"writer-beyond-count", `"file": "part-00000.parquet"`, `"file": "part-2-of-2-00000.parquet"`, ErrManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(disk, []byte(tc.from)) {
				t.Fatalf("seed lacks %q", tc.from)
			}
			_, err := ParseManifest(bytes.Replace(disk, []byte(tc.from), []byte(tc.to), 1))
			if !errors.Is(err, tc.is) {
				t.Fatalf("ParseManifest = %v, want %v", err, tc.is)
			}
		})
	}
}

// FuzzParseManifest: whatever parses must re-encode to a manifest that
// parses to the same thing.
func FuzzParseManifest(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(manifestSeeds, "*.json"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, s := range m.Shards {
			if strings.ContainsAny(s.File, `/\`) {
				t.Fatalf("shard file %q escapes the store folder", s.File)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(m2.Shards) != len(m.Shards) || m2.Rows != m.Rows || schema.Diff(m.Meta(), m2.Meta()) != nil {
			t.Fatal("re-parse differs")
		}
	})
}
