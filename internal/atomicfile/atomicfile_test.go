package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.json")
	tests := []struct {
		name    string
		fill    func(io.Writer) error
		wantErr bool
		want    string // the file's content afterwards
	}{
		{"creates", func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }, false, "one"},
		{"replaces", func(w io.Writer) error { _, err := io.WriteString(w, "two"); return err }, false, "two"},
		{"failed fill keeps the old content", func(w io.Writer) error {
			io.WriteString(w, "half")
			return errors.New("disk full")
		}, true, "two"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(path, tc.fill)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Write: %v, want error %v", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil || string(got) != tc.want {
				t.Errorf("content %q (%v), want %q", got, rerr, tc.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("folder holds %d entries, want only the file (no temporary left)", len(entries))
			}
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode().Perm())
			}
		})
	}
}

func TestWriteFileOverLeftover(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	// A killed process left a longer temporary file: the next write truncates it.
	if err := os.WriteFile(filepath.Join(dir, ".a.json.tmp"), []byte("leftover from a killed run"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("content %q, want %q", got, "new")
	}
	if _, err := os.Stat(filepath.Join(dir, ".a.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
}

func TestWriteMissingFolder(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x")); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
