package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestEscapeID: ids are Python's bytes.decode("utf-8", "backslashreplace") of the name; the
// expected strings are what CPython 3 prints.
func TestEscapeID(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"cat/ok.png", "cat/ok.png"},
		{"caf\u00e9.png", "caf\u00e9.png"},
		{"caf\xe9.png", `caf\xe9.png`},
		{"d\xf6g", `d\xf6g`},
		{"\xff\xfe", `\xff\xfe`},
		{"a\xe2\x82b", `a\xe2\x82b`},               // a truncated sequence: one escape a byte
		{"\xed\xa0\x80", `\xed\xa0\x80`},           // an encoded surrogate is not UTF-8
		{"\xc0\xaf", `\xc0\xaf`},                   // overlong '/'
		{"\xf4\x90\x80\x80", `\xf4\x90\x80\x80`},   // above U+10FFFF
		{"\xe2\x82\xe2\x82\xac", `\xe2\x82` + "€"}, // resynchronises on the next lead byte
		{`lit\xff`, `lit\xff`},                     // valid text stays as it is
	} {
		got := EscapeID(tt.name)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("EscapeID(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// writeGrayPNG writes a w×h grayscale PNG of value v at root/rel.
func writeGrayPNG(t *testing.T, root, rel string, w, h int, v uint8) {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = v
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Skipf("file system takes no name that is not UTF-8: %v", err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Skipf("file system takes no name that is not UTF-8: %v", err)
	}
}

// TestOpenFolderNotUTF8: a file or class folder whose name is not UTF-8 (Latin-1 here) gets
// an escaped, valid UTF-8 id and class name; order stays that of the names on disk, and Load
// reads the real file.
func TestOpenFolderNotUTF8(t *testing.T) {
	root := t.TempDir()
	writeGrayPNG(t, root, "cat/caf\xe9.png", 3, 2, 10)
	writeGrayPNG(t, root, "cat/ok.png", 3, 2, 20)
	writeGrayPNG(t, root, "d\xf6g/x.png", 3, 2, 30)
	writeGrayPNG(t, root, "d\xf6g/sub\xff/y.png", 3, 2, 40)
	value := map[string]uint8{`cat/caf\xe9.png`: 10, "cat/ok.png": 20, `d\xf6g/x.png`: 30, `d\xf6g/sub\xff/y.png`: 40}
	list := filepath.Join(root, "l.txt") // the same files through a list file (not listed itself)
	text := "cat/ok.png\t0\ncat/caf\xe9.png\t0\nd\xf6g/x.png\t1\nd\xf6g/sub\xff/y.png\t1\n"
	if err := os.WriteFile(list, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{root, "list:" + list} {
		src, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		// Sorted by the names on disk: a list by path; a folder as os.walk's sorted roots, so
		// d\xf6g's own x.png comes before those of its subfolder.
		var want []string
		if strings.HasPrefix(spec, "list:") {
			want = []string{`cat/caf\xe9.png`, "cat/ok.png", `d\xf6g/sub\xff/y.png`, `d\xf6g/x.png`}
		} else {
			want = []string{`cat/caf\xe9.png`, "cat/ok.png", `d\xf6g/x.png`, `d\xf6g/sub\xff/y.png`}
			if got := src.ClassNames(); !slices.Equal(got, []string{"cat", `d\xf6g`}) {
				t.Errorf("class names %q", got)
			}
		}
		if got := ids(src); !slices.Equal(got, want) {
			t.Fatalf("%s: ids %q, want %q", spec, got, want)
		}
		for i := range src.Len() {
			m, err := src.Load(i, 1)
			if err != nil {
				t.Fatalf("%s: Load(%d): %v", spec, i, err)
			}
			if m.Width != 3 || m.Height != 2 || m.Pix[0] != value[src.Item(i).ID] {
				t.Errorf("%s: Load(%d) %s: %dx%d of %d, want 3x2 of %d", spec, i, src.Item(i).ID, m.Width, m.Height, m.Pix[0], value[src.Item(i).ID])
			}
		}
	}
}

// TestOpenNotUTF8Collision: a valid name holding the text `\xe9` next to the Latin-1 name it
// escapes is refused, for files, class folders and list paths, naming both.
func TestOpenNotUTF8Collision(t *testing.T) {
	for _, files := range [][]string{
		{"cat/caf\xe9.png", `cat/caf\xe9.png`},
		{"d\xf6g/a.png", `d\xf6g/b.png`},
		{"caf\xe9.png", `caf\xe9.png`}, // a flat folder
	} {
		root := t.TempDir()
		for _, f := range files {
			writeGrayPNG(t, root, f, 1, 1, 0)
		}
		_, err := Open(root)
		if !errors.Is(err, ErrIDCollision) {
			t.Fatalf("%q: Open = %v, want ErrIDCollision", files, err)
		}
		if msg := err.Error(); !strings.Contains(msg, `\xe9`) && !strings.Contains(msg, `\xf6`) {
			t.Errorf("error does not name the names: %v", err)
		}
	}
	root := t.TempDir()
	list := filepath.Join(root, "l.txt")
	if err := os.WriteFile(list, []byte("caf\xe9.png\ncaf\\xe9.png\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("list:" + list); !errors.Is(err, ErrIDCollision) {
		t.Fatalf("list: Open = %v, want ErrIDCollision", err)
	}
}
