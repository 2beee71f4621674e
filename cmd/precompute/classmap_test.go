package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/schema"
	"github.com/deitkd/deitkd/store"
)

// TestClassMapRecorded: a run with --class-map records each class folder's teacher class in the
// store's metadata (deitkd.class_map, mirrored in manifest.json), a rerun with another map is
// refused naming the key and the first folder that differs, and a store made without a class
// map has no such key.
func TestClassMapRecorded(t *testing.T) {
	data := filepath.Join(testdata, "images")
	model := filepath.Join(testdata, "models", "tiny_regnet.onnx")
	label := func(out string, extra ...string) (int, string) {
		args := append([]string{"--model", model, "--data", data, "--out", out, "--resize", "32",
			"--extensions", "png", "--workers", "1", "--threads", "1"}, extra...)
		code, _, stderr := runInProcess(t, args...)
		return code, stderr
	}
	out := filepath.Join(t.TempDir(), "mapped")
	if code, stderr := label(out, "--class-map", writeClassMap(t, "png\t4\njpeg\ta_class\nother 4\n")); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	r, err := store.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.ClassMapEntry{{Folder: "jpeg", Class: 0}, {Folder: "other", Class: 4}, {Folder: "png", Class: 4}}
	if !slices.Equal(r.Meta.ClassMap, want) {
		t.Fatalf("class map %+v, want %+v", r.Meta.ClassMap, want)
	}
	manifest, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), schema.KeyClassMap) {
		t.Fatalf("manifest.json lacks %s:\n%s", schema.KeyClassMap, manifest)
	}
	code, stderr := label(out, "--class-map", writeClassMap(t, "png\t4\njpeg\t1\nother\t4\n"))
	if wantErr := schema.KeyClassMap + `[0]: store has {"folder":"jpeg","class":0}, run wants {"folder":"jpeg","class":1}`; code != exitFatal || !strings.Contains(stderr, wantErr) {
		t.Fatalf("rerun with another map: exit %d, want %d naming %q\n%s", code, exitFatal, wantErr, stderr)
	}
	if code, stderr := label(out, "--class-map", writeClassMap(t, "png\t4\njpeg\t0\nother\t4\n")); code != exitOK {
		t.Fatalf("rerun with the same map: exit %d\n%s", code, stderr)
	}

	// Without a class map (an IDX source, which has no class folders): no key, in the schema
	// metadata or in the manifest.
	plain := filepath.Join(t.TempDir(), "plain")
	if code, _, stderr := runInProcess(t, "--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", writeIDX(t, 10),
		"--out", plain, "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1"); code != exitOK {
		t.Fatalf("no class map: exit %d\n%s", code, stderr)
	}
	r, err = store.OpenReader(plain)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.ClassMap != nil || r.Schema.Metadata().FindKey(schema.KeyClassMap) >= 0 {
		t.Fatalf("a store without a class map records one: %+v", r.Meta.ClassMap)
	}
	if b, err := os.ReadFile(filepath.Join(plain, "manifest.json")); err != nil || strings.Contains(string(b), schema.KeyClassMap) {
		t.Fatalf("manifest.json of a store without a class map: %v, names %s: %v", err, schema.KeyClassMap, strings.Contains(string(b), schema.KeyClassMap))
	}
}
