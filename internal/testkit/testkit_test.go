package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFlipByte(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte{1, 2, 3, 4, 5}, 0o644); err != nil {
		t.Fatal(err)
	}
	FlipByte(t, p)
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte{1, 2, 3 ^ 0xff, 4, 5}) {
		t.Fatalf("after FlipByte: %v", b)
	}
}

func TestCopyTree(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(from, "a.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	CopyTree(t, from, to, map[string]string{"a.png": "c/d/b.png"})
	if b, err := os.ReadFile(filepath.Join(to, "c", "d", "b.png")); err != nil || string(b) != "x" {
		t.Fatalf("copied: %q, %v", b, err)
	}
}
