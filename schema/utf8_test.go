package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckClassNamesUTF8: a class name that is not valid UTF-8 is refused; json.Marshal would
// silently write it as U+FFFD.
func TestCheckClassNamesUTF8(t *testing.T) {
	md := testMetadata(ModeTopK, Float16)
	md.ClassNames = make([]string, md.NumClasses)
	for i := range md.ClassNames {
		md.ClassNames[i] = string(rune('a' + i))
	}
	if err := md.Check(); err != nil {
		t.Fatal(err)
	}
	md.ClassNames[1] = "d\xf6g"
	if err := md.Check(); !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), `"d\xf6g"`) || !strings.Contains(err.Error(), KeyClassNames) {
		t.Fatalf("Check = %v, want ErrMetadata naming %s and the name", err, KeyClassNames)
	}
	md.ClassNames[1] = `d\xf6g` // the escaped form
	if err := md.Check(); err != nil {
		t.Fatal(err)
	}
}
