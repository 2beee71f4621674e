package dataset

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// TestListedIsEndswith: a name is listed when its lower-cased whole name ends with an
// extension, as Python's name.lower().endswith(exts): no dot of its own needed before it.
func TestListedIsEndswith(t *testing.T) {
	for _, tc := range []struct {
		name string
		exts []string
		want bool
	}{
		{"a.jpg", nil, true},
		{"a.PNG", nil, true},
		{"A.JpEg", nil, true},
		{".png", nil, true}, // a dotfile that is only the ending: endswith(".png")
		{".hidden.webp", nil, true},
		{"png", nil, false}, // no dot
		{"a.png.txt", nil, false},
		{"a.txt.png", nil, true},
		{"a.gif", nil, false}, // not in torchvision's IMG_EXTENSIONS
		{"a.GIF", []string{".gif"}, true},
		{"a.tar.gz", []string{".tar.gz"}, true}, // filepath.Ext would say ".gz"
		{"a.gz", []string{".tar.gz"}, false},
		{"A.T\u0130F", nil, false}, // Python: "a.ti̇f"; Go's ToLower alone would give "a.tif"
		{"\u03c9.PNG", nil, true},  // non-ASCII before the ending
		{"a\xff.jpg", nil, true},   // not UTF-8
		{"a.jp\xffg", nil, false},  //
		{"notes.txt", []string{AllFiles}, true},
		{"noext", []string{AllFiles}, true},
	} {
		if got := listed(tc.name, tc.exts); got != tc.want {
			t.Errorf("listed(%q, %q) = %v, want %v", tc.name, tc.exts, got, tc.want)
		}
	}
}

func TestParseExtensions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" ", nil},
		{".jpg,.png,.gif", []string{".gif", ".jpg", ".png"}},
		{"JPG,png, .Gif ,jpg", []string{".gif", ".jpg", ".png"}},
		{"all", []string{AllFiles}},
		{"ALL", []string{AllFiles}},
		{"*", []string{AllFiles}},
		{".tar.gz", []string{".tar.gz"}},
		// torchvision's own list, in any order or case, is the default: one form, nil.
		{".webp,.tiff,.tif,.pgm,.bmp,.ppm,.png,.jpeg,.JPG", nil},
		{".jpg,.jpeg,.png,.ppm,.bmp,.pgm,.tif,.tiff,.webp,.gif", []string{".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}},
	} {
		got, err := ParseExtensions(tc.in)
		if err != nil || !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("ParseExtensions(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{",", ".jpg,", ".jpg,,.png", ".", "all,.gif", ".gif,*", "a/b", ".j\x00g"} {
		if got, err := ParseExtensions(in); !errors.Is(err, ErrExtensions) {
			t.Errorf("ParseExtensions(%q) = %q, %v; want ErrExtensions", in, got, err)
		}
	}
	// OpenWith checks the extensions it is given; list and IDX sources ignore them.
	if _, err := OpenWith(t.TempDir(), Options{Extensions: []string{""}}); !errors.Is(err, ErrExtensions) {
		t.Errorf("OpenWith with an empty extension: %v, want ErrExtensions", err)
	}
	idx := "idx:" + filepath.Join("..", "testdata", "idx", "t10k")
	a, err := Open(idx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenWith(idx, Options{Extensions: []string{".gif"}})
	if err != nil || IDHash(a) != IDHash(b) {
		t.Errorf("IDX with extensions: %v, or another list", err)
	}
}

// TestExtensionsWiden: GIFs and other files of testdata/images come in only when named.
func TestExtensionsWiden(t *testing.T) {
	root := filepath.Join("..", "testdata", "images")
	count := func(exts ...string) int {
		src, err := OpenWith(root, Options{Extensions: exts})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range src.Len() {
			if filepath.Ext(src.Item(i).ID) == ".gif" {
				n++
			}
		}
		return n
	}
	if n := count(); n != 0 {
		t.Errorf("default lists %d GIFs", n)
	}
	if n := count(".gif"); n != 2 {
		t.Errorf(".gif lists %d GIFs, want 2", n)
	}
	src, err := OpenWith(root, Options{Extensions: []string{AllFiles}})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ids(src), func(id string) bool { return id == "png/notes.txt" })
	if i < 0 {
		t.Fatalf("all files: png/notes.txt not listed in %q", ids(src))
	}
	// A file that is no image fails as an image, as any undecodable file does.
	if _, err := src.Load(i, 3); !errors.Is(err, ErrNotImage) {
		t.Errorf("Load(png/notes.txt) = %v, want ErrNotImage", err)
	}
}
