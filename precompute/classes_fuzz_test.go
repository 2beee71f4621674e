package precompute

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadClassMap feeds arbitrary class-map and class-names files to their parsers: they never
// panic, and a map they accept gives every dataset class one teacher class in 0..K-1.
func FuzzReadClassMap(f *testing.F) {
	for _, seed := range []string{
		"cat\t0\ndog\t1\n",
		"# comment\ncat\tkitten\r\ndog 2\n",
		"cat\t0\ncat\t1\n",
		"cat\t9\n",
		"\ufeffcat\t0\ndog\t1\n",
		"cat dog\t1\n",
		"",
		"\t\t\n",
	} {
		f.Add([]byte(seed))
	}
	folders := []string{"cat", "dog", "cat dog"}
	teacherNames := []string{"kitten", "puppy", "kitten"}
	const k = 3
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(t.TempDir(), "map.txt")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadClassMap(file, folders, teacherNames, k)
		if err == nil {
			if len(m) != len(folders) {
				t.Fatalf("map of %d classes for %d folders", len(m), len(folders))
			}
			for d, c := range m {
				if c < 0 || c >= k {
					t.Fatalf("folder %q maps to class %d outside 0..%d", folders[d], c, k-1)
				}
			}
		}
		names, err := ReadClassNames(file)
		if err == nil {
			seen := map[string]bool{}
			for _, n := range names {
				if n == "" || seen[n] {
					t.Fatalf("names %q: blank or repeated %q accepted", names, n)
				}
				seen[n] = true
			}
		}
	})
}
