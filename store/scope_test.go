package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/schema"
)

// A store written with a limit verifies against its limit; Complete asks
// for the whole dataset.
func TestVerifyLimitScope(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float32, 12, 5, 2, 20)
	dir := filepath.Join(t.TempDir(), "s")
	if err := writeUpTo(dir, md, Options{ShardRows: 6, Limit: 14}, 1, 14); err != nil {
		t.Fatal(err)
	}
	man, err := ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if man.Limit != 14 {
		t.Fatalf("manifest limit %d, want 14", man.Limit)
	}
	for _, tc := range []struct {
		name     string
		complete bool
		ok       bool
		scope    string
		want     string // in the problem
	}{
		{"scope", false, true, "limit 14 of 20 images", ""},
		{"complete", true, false, "all 20 images", "6 of 20 image indices in scope (all 20 images)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := VerifyWith(context.Background(), dir, VerifyOptions{Complete: tc.complete})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tc.ok {
				t.Fatalf("ok %v, want %v: %v", rep.OK(), tc.ok, rep.Problems)
			}
			if rep.Scope() != tc.scope {
				t.Errorf("scope %q, want %q", rep.Scope(), tc.scope)
			}
			if !tc.ok {
				if len(rep.Problems) != 1 || !errors.Is(rep.Problems[0].Err, ErrIncomplete) || !strings.Contains(rep.Problems[0].Err.Error(), tc.want) ||
					!strings.Contains(rep.Problems[0].Err.Error(), "written with limit 14") {
					t.Fatalf("problems %v, want one ErrIncomplete with %q", rep.Problems, tc.want)
				}
			}
		})
	}
	// A stopped run is incomplete within its limit too.
	dir2 := filepath.Join(t.TempDir(), "s")
	if err := writeUpTo(dir2, md, Options{ShardRows: 6, Limit: 14}, 1, 10); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), dir2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.Problems[0].Err.Error(), "4 of 14 image indices in scope (limit 14 of 20 images)") {
		t.Fatalf("problems %v, want 4 of 14 missing", rep.Problems)
	}
}

// Resuming with another limit: a bigger one (or none) extends the scope, a
// smaller one keeps it; rows beyond the scope are refused.
func TestResumeLimit(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float32, 12, 5, 1, 20)
	for _, tc := range []struct {
		name          string
		first, second int64
		want          int64
	}{
		{"bigger", 8, 12, 12},
		{"none", 8, 0, 0},
		{"smaller", 12, 8, 12},
		{"past the end", 8, 25, 0},
		{"same", 8, 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			if err := writeUpTo(dir, md, Options{ShardRows: 4, Limit: tc.first}, 1, tc.first); err != nil {
				t.Fatal(err)
			}
			end := tc.want
			if end == 0 {
				end = 20
			}
			if err := writeUpTo(dir, md, Options{ShardRows: 4, Limit: tc.second}, 1, end); err != nil {
				t.Fatal(err)
			}
			man, err := ReadManifest(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if man.Limit != tc.want {
				t.Fatalf("limit %d, want %d", man.Limit, tc.want)
			}
			rep, err := Verify(context.Background(), dir)
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %v", err, rep.Problems)
			}
		})
	}
	dir := filepath.Join(t.TempDir(), "s")
	w, err := OpenWriter(dir, md, Options{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(synthRows(1, 5, 12, 1)[0]); !errors.Is(err, ErrRow) {
		t.Fatalf("write beyond the limit: %v, want ErrRow", err)
	}
}

// A corrupt shard is one problem: its images are unknown, not missing.
func TestVerifyCorruptShardOnly(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float32, 12, 5, 2, 30)
	for _, tc := range []struct {
		name    string
		opts    Options
		damage  func(t testing.TB, path string)
		wantErr error
		missing bool // also stop early: images really missing besides
	}{
		{"checksum", Options{ShardRows: 8}, testkit.FlipByte, ErrChecksum, false},
		{"truncated", Options{ShardRows: 8}, truncate, ErrCorrupt, false},
		{"gone", Options{ShardRows: 8}, remove, ErrMissingShard, false},
		{"checksum, limit", Options{ShardRows: 8, Limit: 20}, testkit.FlipByte, ErrChecksum, false},
		{"checksum and missing images", Options{ShardRows: 8}, testkit.FlipByte, ErrChecksum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			end := int64(30)
			if tc.opts.Limit > 0 {
				end = tc.opts.Limit
			}
			if tc.missing {
				end = 26
			}
			if err := writeUpTo(dir, md, tc.opts, 1, end); err != nil {
				t.Fatal(err)
			}
			man, err := ReadManifest(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, man.Shards[1].File))
			rep, err := Verify(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.missing {
				want = 2
			}
			if len(rep.Problems) != want || !errors.Is(rep.Problems[0].Err, tc.wantErr) || rep.Unreadable != 1 {
				t.Fatalf("problems %v (unreadable %d), want %d, the first %v", rep.Problems, rep.Unreadable, want, tc.wantErr)
			}
			if tc.missing {
				msg := rep.Problems[1].Err.Error()
				if !errors.Is(rep.Problems[1].Err, ErrIncomplete) || !strings.Contains(msg, "4 of 30") || !strings.Contains(msg, "unreadable shard(s) not counted") {
					t.Fatalf("second problem %q, want the 4 missing images and the unreadable shard named", msg)
				}
			}
		})
	}
}

func truncate(t testing.TB, p string) {
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
}

func remove(t testing.TB, p string) {
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// --shard i/n with a limit: the per-writer manifests record it, Merge takes
// writers of the same limit and records it, and the merged store verifies
// against it; writers of different limits are refused.
func TestSplitLimitMerge(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float32, 12, 5, 2, 30)
	for _, tc := range []struct {
		name   string
		limits [2]int64
		ok     bool
	}{
		{"same limit", [2]int64{17, 17}, true},
		{"no limit", [2]int64{0, 0}, true},
		{"different limits", [2]int64{17, 20}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "s")
			for i := range 2 {
				opts := Options{ShardRows: 6, Shard: ShardSpec{Index: i, Count: 2}, Limit: tc.limits[i]}
				end := tc.limits[i]
				if end == 0 {
					end = 30
				}
				if err := writeUpTo(dir, md, opts, 1, end); err != nil {
					t.Fatal(err)
				}
				rep, err := Verify(context.Background(), filepath.Join(dir, manifestName(opts.Shard)))
				if err != nil || !rep.OK() {
					t.Fatalf("verify writer %d: %v %v", i, err, rep.Problems)
				}
				if rep.Writer == nil || !strings.Contains(rep.Scope(), "≡") {
					t.Errorf("writer %d scope %q", i, rep.Scope())
				}
			}
			m, err := Merge(context.Background(), dir)
			if !tc.ok {
				if !errors.Is(err, schema.ErrMismatch) || !strings.Contains(err.Error(), "limit 17") || !strings.Contains(err.Error(), "limit 20") {
					t.Fatalf("merge: %v, want a mismatch naming both limits", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Limit != tc.limits[0] {
				t.Fatalf("merged limit %d, want %d", m.Limit, tc.limits[0])
			}
			rep, err := Verify(context.Background(), dir)
			if err != nil || !rep.OK() {
				t.Fatalf("verify merged: %v %v", err, rep.Problems)
			}
			rep, err = VerifyWith(context.Background(), dir, VerifyOptions{Complete: true})
			if err != nil || rep.OK() != (tc.limits[0] == 0) {
				t.Fatalf("verify --complete merged: %v %v", err, rep.Problems)
			}
		})
	}
}

// The merged manifest lists the shards by first image index, as a single
// writer's are.
func TestMergeOrder(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float32, 12, 5, 1, 40)
	dir := filepath.Join(t.TempDir(), "s")
	for i := range 3 {
		if err := writeStore(dir, md, Options{ShardRows: 4, Shard: ShardSpec{Index: i, Count: 3}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Merge(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) < 6 {
		t.Fatalf("%d shards, want several per writer", len(m.Shards))
	}
	if !sort.SliceIsSorted(m.Shards, func(a, b int) bool { return m.Shards[a].FirstImageIndex < m.Shards[b].FirstImageIndex }) {
		var firsts []int64
		for _, s := range m.Shards {
			firsts = append(firsts, s.FirstImageIndex)
		}
		t.Fatalf("merged shards by first image index: %v, want ascending", firsts)
	}
	disk, err := ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range disk.Shards {
		if disk.Shards[i].File != m.Shards[i].File {
			t.Fatalf("manifest.json shard %d is %s, Merge returned %s", i, disk.Shards[i].File, m.Shards[i].File)
		}
	}
}
