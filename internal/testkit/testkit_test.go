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
