package precompute

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestClassFilesNotUTF8: a class-names line that is not UTF-8 is refused with its line; a
// class map names a Latin-1 folder by its escaped name (dataset.EscapeID) or as on disk.
func TestClassFilesNotUTF8(t *testing.T) {
	dir := t.TempDir()
	names := filepath.Join(dir, "names.txt")
	os.WriteFile(names, []byte("cat\nd\xf6g\n"), 0o644)
	if _, err := ReadClassNames(names); err == nil || !strings.Contains(err.Error(), ":2: ") || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("ReadClassNames = %v, want line 2 refused", err)
	}
	for _, text := range []string{"cat\t0\nd\xf6g\t1\n", "cat\t0\nd\\xf6g\t1\n"} {
		m := filepath.Join(dir, "map.txt")
		os.WriteFile(m, []byte(text), 0o644)
		got, err := ReadClassMap(m, []string{"cat", `d\xf6g`}, nil, 2)
		if err != nil || !slices.Equal(got, []int32{0, 1}) {
			t.Fatalf("ReadClassMap(%q) = %v, %v", text, got, err)
		}
	}
}
