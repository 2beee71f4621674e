package filehash

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSHA256(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		// Both computed with coreutils: printf '' | sha256sum; printf 'abc' | sha256sum
		{"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := SHA256(p)
			if err != nil || got != tc.want {
				t.Errorf("SHA256 = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, err := SHA256(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file hashed without error")
	}
}
