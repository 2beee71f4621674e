// Package atomicfile replaces a file so that a reader, or a run after a crash, sees either its
// old content or its new content whole: the new content goes to a temporary file in the same
// folder, which is fsynced, renamed over the file, and the folder fsynced.
//
// The temporary file is named "." + base + ".tmp" beside the file: hidden, and never matched by
// a glob on the file's own extension (a label store's *.parquet). One writer per path: two
// goroutines replacing the same path at once would share the temporary file. A temporary file
// left by a killed process is truncated by the next write.
//
// atomicfile imports nothing of deitkd; every package that writes whole files uses it.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with what fill writes (permissions 0644: outputs are for others to read).
// On any error the temporary file is removed, path keeps its old content, and the error is
// returned as fill or the file system gave it: the caller wraps it with what it was writing.
func Write(path string, fill func(w io.Writer) error) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	closed = true
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFile replaces path with data; see Write.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir makes a folder's entries (a rename, a new file or sub-folder) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
