package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/deitkd/deitkd/store"
)

// TestLimitScope: a --limit store verifies ok (and is incomplete only when
// the whole dataset is asked for); a rerun without --limit extends it; a
// --shard i/n + --limit run merges and verifies. Before, verify refused
// every --limit store and merge every --limit split.
func TestLimitScope(t *testing.T) {
	data := writeIDX(t, 100)
	base := []string{"--model", filepath.Join(testdata, "models", "tiny_gray.onnx"), "--data", data,
		"--shard-rows", "20", "--mean", "0.5", "--std", "0.5", "--workers", "1", "--threads", "1"}
	check := func(t *testing.T, dir string, complete, wantOK bool) {
		t.Helper()
		rep, err := store.VerifyWith(context.Background(), dir, store.VerifyOptions{Complete: complete})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != wantOK {
			t.Fatalf("verify %s (complete %v): ok %v, want %v: %v", dir, complete, rep.OK(), wantOK, rep.Problems)
		}
	}
	t.Run("single", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "labels")
		args := append(append([]string(nil), base...), "--out", out)
		if code, _, stderr := runInProcess(t, append(args, "--limit", "60")...); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		check(t, out, false, true)
		check(t, out, true, false)
		if code, _, stderr := runInProcess(t, args...); code != exitOK {
			t.Fatalf("rerun without --limit: exit %d\n%s", code, stderr)
		}
		check(t, out, true, true)
	})
	t.Run("split", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "labels")
		for _, shard := range []string{"0/2", "1/2"} {
			args := append(append([]string(nil), base...), "--out", out, "--limit", "60", "--shard", shard)
			if code, _, stderr := runInProcess(t, args...); code != exitOK {
				t.Fatalf("--shard %s: exit %d\n%s", shard, code, stderr)
			}
		}
		m, err := store.Merge(context.Background(), out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Limit != 60 || m.Images != 60 {
			t.Fatalf("merged: limit %d, %d images; want 60, 60", m.Limit, m.Images)
		}
		check(t, out, false, true)
		check(t, out, true, false)
	})
}
