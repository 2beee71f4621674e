package store

import (
	"os"
	"testing"

	"github.com/deitkd/deitkd/schema"
)

func TestProbe(t *testing.T) {
	dir := os.Getenv("PROBE_DIR")
	if dir == "" {
		t.Skip()
	}
	md := testMeta(schema.ModeTopK, schema.Float16, 1000, 10, 10, 2000)
	if err := writeStore(dir+"/topk16", md, Options{}, 1); err != nil {
		t.Fatal(err)
	}
	md = testMeta(schema.ModeFull, schema.Float16, 1000, 0, 10, 500)
	if err := writeStore(dir+"/full16", md, Options{}, 1); err != nil {
		t.Fatal(err)
	}
	md = testMeta(schema.ModeFull, schema.Float32, 1000, 0, 10, 500)
	if err := writeStore(dir+"/full32", md, Options{}, 1); err != nil {
		t.Fatal(err)
	}
}
