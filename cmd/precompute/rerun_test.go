package main

import (
	"github.com/deitkd/deitkd/internal/testkit"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRerunChecksStore: a rerun over a store whose finished shards are
// damaged in a way their size does not show, or whose manifest is gone,
// exits 1 naming what is wrong and leaves the files alone. Before, the
// first rerun ended "all labelled" (exit 0) on a store verify refused, and
// the second deleted every part file.
func TestRerunChecksStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, out string) string // returns what stderr must name
	}{
		{"flipped-byte", func(t *testing.T, out string) string {
			p := filepath.Join(out, "part-00001.parquet")
			testkit.FlipByte(t, p)
			return p
		}},
		{"manifest-missing", func(t *testing.T, out string) string {
			if err := os.Remove(filepath.Join(out, "manifest.json")); err != nil {
				t.Fatal(err)
			}
			return "manifest.json is missing"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "labels")
			args := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", writeIDX(t, 100),
				"--out", out, "--shard-rows", "40", "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1"}
			if code, _, stderr := runInProcess(t, args...); code != exitOK {
				t.Fatalf("first run: exit %d\n%s", code, stderr)
			}
			want := tc.damage(t, out)
			parts, _ := filepath.Glob(filepath.Join(out, "part-*.parquet"))
			code, stdout, stderr := runInProcess(t, args...)
			if code != exitFatal || !strings.Contains(stderr, want) {
				t.Fatalf("rerun: exit %d, stderr %q; want exit %d naming %q\n%s", code, stderr, exitFatal, want, stdout)
			}
			if after, _ := filepath.Glob(filepath.Join(out, "part-*.parquet")); len(after) != len(parts) || len(parts) < 3 {
				t.Fatalf("part files before the rerun %v, after %v", parts, after)
			}
			t.Log(strings.TrimSpace(stderr))
		})
	}
}
