package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// TestInspectClassMap: inspect lists a store's class map, the first 20 folders and a count of
// the rest, and says nothing of one in a store without it.
func TestInspectClassMap(t *testing.T) {
	mapped, plain := t.TempDir(), t.TempDir()
	md := meta(20)
	for d := range 23 {
		md.ClassMap = append(md.ClassMap, schema.ClassMapEntry{Folder: fmt.Sprintf("folder%02d", d), Class: d % 10})
	}
	write(t, mapped, md, store.ShardSpec{})
	write(t, plain, meta(20), store.ShardSpec{})
	code, out, errs := runArgs("inspect", mapped)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"class map (23 folders", "  folder01                 →     1 Trouser\n", "  folder19  ", "  ... 3 more folders\n", schema.KeyClassMap} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "folder20") {
		t.Errorf("output shows a 21st folder:\n%s", out)
	}
	code, out, errs = runArgs("inspect", plain)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "class map") || strings.Contains(out, schema.KeyClassMap) {
		t.Errorf("a store without a class map shows one:\n%s", out)
	}
}
