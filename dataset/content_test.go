package dataset_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deitkd/deitkd/dataset"
)

func contentHash(t *testing.T, spec string) string {
	t.Helper()
	src, err := dataset.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dataset.ContentHash(src)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func writeBytes(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestContentHashFolder: the hash follows a file's size and its first and last KiB, and not
// the middle of a large file (the price of two small reads a file).
func TestContentHashFolder(t *testing.T) {
	root := t.TempDir()
	small := filepath.Join(root, "a", "small.png")
	large := filepath.Join(root, "b", "large.png")
	big := make([]byte, 5000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	writeBytes(t, small, []byte("0123456789"))
	writeBytes(t, large, big)
	writeBytes(t, filepath.Join(root, "b", "empty.jpg"), nil)
	h0 := contentHash(t, root)
	if h := contentHash(t, root); h != h0 || len(h0) != 64 {
		t.Fatalf("hash %q then %q, want one 64-digit hex hash", h0, h)
	}
	for _, tc := range []struct {
		name   string
		file   string
		b      []byte
		change bool
	}{
		{"small file, same size", small, []byte("0123X56789"), true},
		{"small file, other size", small, []byte("01234567890"), true},
		{"large file, head", large, flip(big, 3), true},
		{"large file, tail", large, flip(big, len(big)-3), true},
		{"large file, middle", large, flip(big, 2500), false},
		{"large file, other size", large, append(append([]byte{}, big[:2500]...), big[2501:]...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			writeBytes(t, tc.file, tc.b)
			defer writeBytes(t, tc.file, old)
			if h := contentHash(t, root); (h != h0) != tc.change {
				t.Fatalf("hash changed: %v, want %v", h != h0, tc.change)
			}
		})
	}
	if h := contentHash(t, root); h != h0 {
		t.Fatal("hash of the restored tree differs")
	}
	// A list source of the same files in the same order hashes as the folder does.
	list := filepath.Join(root, "files.txt")
	writeBytes(t, list, []byte("a/small.png\t0\nb/empty.jpg\t1\nb/large.png\t1\n"))
	if h := contentHash(t, "list:"+list); h != h0 {
		t.Fatalf("list source hash %s, folder %s", h, h0)
	}
	// A file gone since listing is an error naming it.
	src, err := dataset.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(small); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.ContentHash(src); err == nil || !contains(err.Error(), "a/small.png") {
		t.Fatalf("hash with a file gone: %v, want an error naming a/small.png", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xff
	return c
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestContentHashIDX: IDX files hash their decoded pixels: one pixel changed changes it.
func TestContentHashIDX(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "idx", n))
		if err != nil {
			t.Fatal(err)
		}
		writeBytes(t, filepath.Join(dir, n), b)
	}
	spec := "idx:" + filepath.Join(dir, "t10k")
	h0 := contentHash(t, spec)
	name := filepath.Join(dir, "t10k-images-idx3-ubyte")
	b, _ := os.ReadFile(name)
	writeBytes(t, name, flip(b, len(b)/2))
	if h := contentHash(t, spec); h == h0 {
		t.Fatal("a changed pixel left the hash as it was")
	}
}

// TestContentHashRate hashes a tree of a few thousand files and logs the rate (on a warm
// page cache: the cost of the syscalls and hashing, not of a cold disk).
func TestContentHashRate(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	root := t.TempDir()
	const n = 3000
	b := make([]byte, 8192)
	for i := range n {
		b[0], b[len(b)-1] = byte(i), byte(i>>8)
		writeBytes(t, filepath.Join(root, string(rune('a'+i%20)), "f"+strconv.Itoa(i)+".jpg"), b)
	}
	src, err := dataset.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := dataset.ContentHash(src); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("%d files of %d bytes in %v: %.0f files/s", n, len(b), d, n/d.Seconds())
}
