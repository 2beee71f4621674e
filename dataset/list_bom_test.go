package dataset

import (
	"os"
	"path/filepath"
	"testing"
)

// TestListBOM: a list file saved with a UTF-8 byte order mark (Notepad, Excel's "UTF-8 CSV")
// lists the same paths as one without: the mark is not part of the first path.
func TestListBOM(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"no BOM", "a.png\t0\nb.png\t1\n", []string{"a.png", "b.png"}},
		{"BOM", "\ufeffa.png\t0\nb.png\t1\n", []string{"a.png", "b.png"}},
		{"BOM and CRLF", "\ufeffa.png\t0\r\nb.png\t1\r\n", []string{"a.png", "b.png"}},
		{"BOM before a comment", "\ufeff# header\na.png\n", []string{"a.png"}},
		{"BOM only on the first line", "a.png\n\ufeffb.png\n", []string{"a.png", "\ufeffb.png"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "list.txt")
			if err := os.WriteFile(file, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := Open("list:" + file)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := range src.Len() {
				got = append(got, src.Item(i).ID)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("listed %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("item %d is %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
