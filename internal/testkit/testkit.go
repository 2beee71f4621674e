// Package testkit holds the few helpers that tests of several packages share. It imports
// nothing of deitkd, so any package's tests can use it.
package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// FlipByte inverts the middle byte of the file at path: a damaged file of the same size, which
// only a checksum (or a decoder) can tell from the original.
func FlipByte(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty: no byte to flip", path)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CopyTree copies each file from → to, both '/'-separated and relative to fromRoot and toRoot,
// creating the folders it needs: a small tree built from committed test files.
func CopyTree(t testing.TB, fromRoot, toRoot string, files map[string]string) {
	t.Helper()
	for from, to := range files {
		b, err := os.ReadFile(filepath.Join(fromRoot, filepath.FromSlash(from)))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(toRoot, filepath.FromSlash(to))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
