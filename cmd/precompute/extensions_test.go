package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/store"
)

// TestExtensions: --extensions widens the files a folder lists (dots optional, any case),
// the store records the list in one canonical form, a rerun with another list is refused
// naming it, one with the same list in another spelling resumes, and "all" takes every file,
// a text file then failing as an image.
func TestExtensions(t *testing.T) {
	data := t.TempDir()
	testkit.CopyTree(t, filepath.Join(testdata, "images"), data, map[string]string{
		"png/rgb_40x30.png": "c0/rgb.png", "other/paletted_39x27.gif": "c0/paletted.gif", "png/notes.txt": "c0/notes.txt",
		"jpeg/small_20x20.JPG": "c1/small.JPG", "other/transparent_30x42.gif": "c1/transparent.gif",
	})
	args := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", data,
		"--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1"}
	out := filepath.Join(t.TempDir(), "labels")
	code, stdout, stderr := runInProcess(t, append(args, "--out", out, "--extensions", "gif,PNG,.jpg")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var ids []string
	for _, r := range readRows(t, out) {
		ids = append(ids, r.id)
	}
	if want := []string{"c0/paletted.gif", "c0/rgb.png", "c1/small.JPG", "c1/transparent.gif"}; !slices.Equal(ids, want) {
		t.Fatalf("rows %q, want %q", ids, want)
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Meta.Dataset.Extensions, []string{".gif", ".jpg", ".png"}; !slices.Equal(got, want) {
		t.Fatalf("store records extensions %q, want %q", got, want)
	}
	verify(t, out)

	code, _, stderr = runInProcess(t, append(args, "--out", out)...)
	if code != exitFatal || !strings.Contains(stderr, "deitkd.dataset.extensions") || !strings.Contains(stderr, "IMG_EXTENSIONS") {
		t.Fatalf("rerun without --extensions: exit %d, stderr %q; want %d naming deitkd.dataset.extensions", code, stderr, exitFatal)
	}
	t.Logf("rerun without --extensions: %s", stderr)
	code, stdout, stderr = runInProcess(t, append(args, "--out", out, "--extensions", " .PNG,jpg,.gif,GIF")...)
	if code != exitOK || !strings.Contains(stdout, "already present: 4") {
		t.Fatalf("rerun with the same extensions spelt otherwise: exit %d\n%s%s", code, stdout, stderr)
	}

	all := filepath.Join(t.TempDir(), "all")
	code, stdout, stderr = runInProcess(t, append(args, "--out", all, "--extensions", "all")...)
	if code != exitSkipped || !strings.Contains(stdout, "c0/notes.txt") {
		t.Fatalf("--extensions all: exit %d, want %d with c0/notes.txt failed\n%s%s", code, exitSkipped, stdout, stderr)
	}
	if r, err = store.OpenReader(all); err != nil || !slices.Equal(r.Meta.Dataset.Extensions, []string{"*"}) {
		t.Fatalf("--extensions all: store %v, extensions %q", err, r.Meta.Dataset.Extensions)
	}
	if n := len(readRows(t, all)); n != 4 {
		t.Errorf("--extensions all: %d rows, want 4", n)
	}

	for _, ext := range []string{".jpg,,png", "all,.gif", ".", "a/b"} {
		if code, _, stderr := runInProcess(t, append(args, "--out", filepath.Join(t.TempDir(), "x"), "--extensions", ext)...); code != exitUsage || !strings.Contains(stderr, "--extensions") {
			t.Errorf("--extensions %q: exit %d, stderr %q; want %d", ext, code, stderr, exitUsage)
		}
	}
	list := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(list, []byte("c0/rgb.png\n"), 0o644)
	if code, _, stderr := runInProcess(t, "--model", "m", "--data", "list:"+list, "--out", filepath.Join(t.TempDir(), "x"), "--extensions", "gif"); code != exitUsage || !strings.Contains(stderr, "folder") {
		t.Errorf("--extensions with a list file: exit %d, stderr %q; want %d", code, stderr, exitUsage)
	}
}
