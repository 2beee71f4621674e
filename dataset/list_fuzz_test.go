package dataset

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpenList feeds arbitrary list files to Open("list:FILE"): it never panics, and a list it
// accepts has ids that are sorted, distinct, clean and inside the list's folder, indexed 0..n-1.
func FuzzOpenList(f *testing.F) {
	for _, seed := range []string{
		"a.png\t0\nb/c.jpg\t1\n",
		"\ufeffa.png\r\n# comment\n\nb.png\n",
		"a.png\na.png\n",
		"../up.png\n",
		"/abs.png\t2\n",
		"x.png\t-1\n",
		"x.png\tcat\n",
		"./a/../b.png\t3\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(t.TempDir(), "list.txt")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := Open("list:" + file)
		if err != nil {
			return
		}
		prev := ""
		for i := range src.Len() {
			it := src.Item(i)
			if it.Index != i {
				t.Fatalf("item %d has index %d", i, it.Index)
			}
			if i > 0 && it.ID <= prev {
				t.Fatalf("ids not sorted and distinct: %q after %q", it.ID, prev)
			}
			if it.ID != path.Clean(it.ID) || path.IsAbs(it.ID) || it.ID == ".." || strings.HasPrefix(it.ID, "../") {
				t.Fatalf("id %q is not a clean path inside the list's folder", it.ID)
			}
			prev = it.ID
		}
	})
}
