package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestOpenFolderMatchesImageFolder: ids, order, labels and classes as torchvision's ImageFolder
// lists testdata/images (the reference file records its order). The reference script lists
// GIFs too (its is_valid_file takes .jpg, .jpeg, .png, .gif and .webp), so its decoding is
// checked on them: the same list here.
func TestOpenFolderMatchesImageFolder(t *testing.T) {
	ref := loadReference(t)
	src, err := OpenWith(filepath.Join("..", "testdata", "images"), Options{Extensions: []string{".jpg", ".jpeg", ".png", ".gif", ".webp"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.ClassNames(), ref.Classes) {
		t.Fatalf("classes %v, torchvision %v", src.ClassNames(), ref.Classes)
	}
	var want []*refEntry
	for _, e := range ref.Entries {
		if e.Kind == "decode" && e.Setting == "rgb" {
			want = append(want, e)
		}
	}
	if src.Len() != len(want) {
		t.Fatalf("Len %d, torchvision %d", src.Len(), len(want))
	}
	for i, e := range want {
		it := src.Item(i)
		if it.Index != i || it.ID != e.ID || it.Label != *e.Label {
			t.Errorf("item %d = %+v, torchvision %s label %d", i, it, e.ID, *e.Label)
		}
	}
}

func touch(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		dir := filepath.Dir(p)
		if strings.HasSuffix(f, "/") {
			dir = p
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(f, "/") {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func ids(s Source) []string {
	var out []string
	for i := range s.Len() {
		out = append(out, s.Item(i).ID)
	}
	return out
}

func TestOpenFolderOrder(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "b_cls/z.png", "b_cls/A.PNG", "b_cls/sub/a.jpg", "b_cls/sub-x/m.webp",
		"b_cls/sub/deeper/k.gif", "b_cls/skip.txt", "a_cls/x.jpeg", "top.png", "c_empty/")
	src, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// The order torchvision 0.14's make_dataset gives for this tree (checked with it):
	// sorted(os.walk(...)) puts "sub" before "sub-x" before "sub/deeper". The GIF is not in
	// torchvision's IMG_EXTENSIONS: only a list naming it takes it.
	want := []string{"a_cls/x.jpeg", "b_cls/A.PNG", "b_cls/z.png", "b_cls/sub/a.jpg", "b_cls/sub-x/m.webp"}
	if got := ids(src); !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
	withGIF, err := OpenWith(root, Options{Extensions: []string{".gif", ".png", ".jpeg", ".jpg", ".webp"}})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, "b_cls/sub/deeper/k.gif")
	if got := ids(withGIF); !slices.Equal(got, want) {
		t.Fatalf("with .gif: order %q, want %q", got, want)
	}
	if got := src.ClassNames(); !slices.Equal(got, []string{"a_cls", "b_cls", "c_empty"}) {
		t.Fatalf("classes %q", got)
	}
	if src.Item(0).Label != 0 || withGIF.Item(5).Label != 1 {
		t.Fatalf("labels %+v %+v", src.Item(0), withGIF.Item(5))
	}
}

func TestOpenFlatFolder(t *testing.T) {
	src, err := Open(filepath.Join("..", "testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	if src.ClassNames() != nil {
		t.Fatalf("flat folder has classes %v", src.ClassNames())
	}
	want := []string{"huge_dimensions.png", "text.jpg", "truncated.jpg", "truncated.png", "zero_bytes.jpg"}
	if got := ids(src); !slices.Equal(got, want) {
		t.Fatalf("ids %q, want %q", got, want)
	}
	errs := []error{ErrTooLarge, ErrNotImage, ErrCorrupt, ErrCorrupt, ErrEmpty}
	for i := range src.Len() {
		if src.Item(i).Label != -1 {
			t.Errorf("%s has label %d", src.Item(i).ID, src.Item(i).Label)
		}
		_, err := src.Load(i, 3)
		if !errors.Is(err, errs[i]) || !strings.Contains(err.Error(), "decode "+want[i]+": ") {
			t.Errorf("Load(%s) = %v, want %v naming the image", want[i], err, errs[i])
		}
	}
}

func TestOpenErrors(t *testing.T) {
	empty := t.TempDir()
	touch(t, empty, "cls/readme.txt")
	tests := []struct {
		name, spec string
		want       error
	}{
		{"missing folder", filepath.Join(empty, "nope"), os.ErrNotExist},
		{"no images", empty, ErrNoImages},
		{"missing list", "list:" + filepath.Join(empty, "nope.txt"), os.ErrNotExist},
		{"missing idx", "idx:" + filepath.Join(empty, "train"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.spec); !errors.Is(err, tt.want) {
				t.Fatalf("Open(%s) = %v, want %v", tt.spec, err, tt.want)
			}
		})
	}
}

func writeList(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenList(t *testing.T) {
	// Paths point into testdata/images from a list file written next to it.
	images, err := filepath.Abs(filepath.Join("..", "testdata", "images"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "list.txt")
	if err := os.Symlink(images, filepath.Join(dir, "imgs")); err != nil {
		t.Skip("no symlinks:", err)
	}
	text := "# a comment\nimgs/png/rgb_40x30.png\t4\r\n\nimgs/jpeg/gray_37x21.jpg\n./imgs/other/paletted_39x27.gif\t0\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open("list:" + p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{0, "imgs/jpeg/gray_37x21.jpg", -1},
		{1, "imgs/other/paletted_39x27.gif", 0},
		{2, "imgs/png/rgb_40x30.png", 4},
	}
	for i, w := range want {
		if got := src.Item(i); got != w {
			t.Errorf("item %d = %+v, want %+v", i, got, w)
		}
	}
	if src.Len() != 3 || src.ClassNames() != nil {
		t.Fatalf("Len %d classes %v", src.Len(), src.ClassNames())
	}
	m, err := src.Load(2, 3)
	if err != nil || m.Width != 40 || m.Height != 30 {
		t.Fatalf("Load = %v, %v", m, err)
	}
}

func TestOpenListErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"absolute", "/etc/passwd\n"},
		{"escapes", "../x.png\n"},
		{"duplicate", "a.png\n./a.png\n"},
		{"bad label", "a.png\tcat\n"},
		{"negative label", "a.png\t-2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open("list:" + writeList(t, tt.text)); !errors.Is(err, ErrBadList) {
				t.Fatalf("err = %v, want ErrBadList", err)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		if _, err := Open("list:" + writeList(t, "# nothing\n\n")); !errors.Is(err, ErrNoImages) {
			t.Fatalf("err = %v, want ErrNoImages", err)
		}
	})
}

func TestOpenIDX(t *testing.T) {
	tests := []struct {
		prefix string
		n      int
	}{
		{"train", 5}, // gzip
		{"t10k", 3},  // plain
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			src, err := Open("idx:" + filepath.Join("..", "testdata", "idx", tt.prefix))
			if err != nil {
				t.Fatal(err)
			}
			if src.Len() != tt.n || src.ClassNames() != nil {
				t.Fatalf("Len %d classes %v", src.Len(), src.ClassNames())
			}
			f, err := os.Open(filepath.Join("..", "testdata", "idx", tt.prefix+"-images-idx3-ubyte"+map[bool]string{true: ".gz"}[tt.prefix == "train"]))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, raw, err := ParseIDX(f)
			if err != nil {
				t.Fatal(err)
			}
			for i := range src.Len() {
				it := src.Item(i)
				wantID := tt.prefix + "/0000000" + string(rune('0'+i))
				if it.ID != wantID || it.Index != i || it.Label != i*3%10 {
					t.Errorf("item %d = %+v, want id %s label %d", i, it, wantID, i*3%10)
				}
				g, err := src.Load(i, 1)
				if err != nil || g.Width != 28 || g.Height != 28 || string(g.Pix) != string(raw[i*784:(i+1)*784]) {
					t.Fatalf("Load(%d, 1) = %v", i, err)
				}
				c, err := src.Load(i, 3)
				if err != nil || c.Pix[3*100+2] != g.Pix[100] || c.Pix[3*100] != g.Pix[100] {
					t.Fatalf("Load(%d, 3) = %v", i, err)
				}
			}
		})
	}
}

// TestOpenFashionMNIST reads the installed Fashion-MNIST test set when there is one.
func TestOpenFashionMNIST(t *testing.T) {
	const dir = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	src, err := Open("idx:" + dir + "/t10k")
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 10000 || src.Item(9999).ID != "t10k/00009999" {
		t.Fatalf("Len %d, last %+v", src.Len(), src.Item(src.Len()-1))
	}
	counts := make([]int, 10)
	for i := range src.Len() {
		counts[src.Item(i).Label]++
	}
	for c, n := range counts {
		if n != 1000 { // Fashion-MNIST's test set is balanced
			t.Errorf("class %d has %d images", c, n)
		}
	}
}

func TestIDHash(t *testing.T) {
	src, err := Open(filepath.Join("..", "testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("huge_dimensions.png\ntext.jpg\ntruncated.jpg\ntruncated.png\nzero_bytes.jpg\n"))
	if got := IDHash(src); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("IDHash = %s", got)
	}
	other, err := Open("idx:" + filepath.Join("..", "testdata", "idx", "t10k"))
	if err != nil {
		t.Fatal(err)
	}
	if IDHash(other) == IDHash(src) {
		t.Fatal("different sources, same hash")
	}
	// The separator is part of the hash: ids "ab" and "a", "b" differ.
	if IDHash(idList{"ab"}) == IDHash(idList{"a", "b"}) {
		t.Fatal("separator missing")
	}
	// sha256 of "a\nb\n", computed with coreutils: printf 'a\nb\n' | sha256sum
	if got, want := IDHash(idList{"a", "b"}), "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2"; got != want {
		t.Fatalf("IDHash = %s, want %s", got, want)
	}
}

// idList is a Source of ids alone, for hashing.
type idList []string

func (l idList) Len() int                      { return len(l) }
func (l idList) ClassNames() []string          { return nil }
func (l idList) Item(i int) Item               { return Item{Index: i, ID: l[i], Label: -1} }
func (l idList) Load(int, int) (*Image, error) { return nil, ErrNotImage }

// TestLoadConcurrent: a source serves many goroutines at once (run with -race).
func TestLoadConcurrent(t *testing.T) {
	src, err := Open(filepath.Join("..", "testdata", "images"))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]*Image, src.Len())
	for i := range src.Len() {
		if first[i], err = src.Load(i, 3); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*src.Len())
	for range 4 {
		wg.Go(func() {
			for i := range src.Len() {
				m, err := src.Load(i, 3)
				if err != nil {
					errs <- err
					continue
				}
				if string(m.Pix) != string(first[i].Pix) {
					errs <- errors.New(src.Item(i).ID + ": pixels differ between loads")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
