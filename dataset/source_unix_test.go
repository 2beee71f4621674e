//go:build unix

package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenFolderCycles: symbolic links back to a folder being listed are refused by device and
// inode, at once (two `ln -s .` in one folder made 2^64 paths before the depth guard), while a
// link to a sibling folder is listed as ImageFolder's os.walk(followlinks=True) lists it.
func TestOpenFolderCycles(t *testing.T) {
	tests := []struct {
		name  string
		links map[string]string // link name → target
	}{
		{"two dot links in a class folder", map[string]string{"cat/l1": ".", "cat/l2": "."}},
		{"class folder linked to the root", map[string]string{"cat/up": ".."}},
		{"link to the root itself", map[string]string{"cat/deep/root": "../.."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			touch(t, root, "cat/a.png", "cat/deep/b.png", "dog/c.png")
			for name, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			_, err := Open(root)
			if !errors.Is(err, ErrCycle) {
				t.Fatalf("Open = %v, want ErrCycle", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("cycle found after %v", d)
			}
		})
	}
	t.Run("sibling link is not a cycle", func(t *testing.T) {
		root := t.TempDir()
		touch(t, root, "cat/a.png", "dog/c.png")
		if err := os.Symlink("../dog", filepath.Join(root, "cat", "alias")); err != nil {
			t.Fatal(err)
		}
		src, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"cat/a.png", "cat/alias/c.png", "dog/c.png"}
		if got := ids(src); !slices.Equal(got, want) {
			t.Fatalf("ids %v, want %v", got, want)
		}
	})
}

// TestLoadRefusesNonRegular: a FIFO named like an image fails at once instead of blocking for
// ever, and a link to /dev/zero fails instead of reading without end; both wrap ErrNotRegular and
// name the file, so precompute logs them as failed images.
func TestLoadRefusesNonRegular(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "cat/")
	if err := syscall.Mkfifo(filepath.Join(root, "cat", "pipe.png"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(root, "cat", "zero.png")); err != nil {
		t.Fatal(err)
	}
	src, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(src); !slices.Equal(got, []string{"cat/pipe.png", "cat/zero.png"}) {
		t.Fatalf("ids %v", got)
	}
	for i := range src.Len() {
		done := make(chan error, 1)
		go func() { _, err := src.Load(i, 3); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("Load(%s) = %v, want ErrNotRegular", src.Item(i).ID, err)
			}
			if err != nil && !strings.Contains(err.Error(), src.Item(i).ID) {
				t.Errorf("error %q does not name %s", err, src.Item(i).ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) still running after 5 s", src.Item(i).ID)
		}
	}
	// The feeder's own read path takes the same checks.
	cfg := Config{Resize: 8, Crop: 8, Channels: 3}
	if _, err := loadInto(src, 0, cfg, nil); !errors.Is(err, ErrNotRegular) {
		t.Errorf("loadInto = %v, want ErrNotRegular", err)
	}
}

// TestLoadCapsFileSize: a regular file larger than MaxFileBytes is refused before it is read.
func TestLoadCapsFileSize(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "cat/")
	f, err := os.Create(filepath.Join(root, "cat", "huge.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	src, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(0, 3); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load = %v, want ErrTooLarge", err)
	}
}
