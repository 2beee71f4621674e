package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/internal/testkit"
	"github.com/deitkd/deitkd/schema"
)

// shardDamage is a way to damage finished shard p of a store, whose
// manifest is at manPath, that its size does not show. other is a shard of
// the same name, rows and images written with another teacher.
type shardDamage struct {
	name   string
	damage func(t *testing.T, p, manPath, other string)
	is     error
	says   string // what the error must say besides the shard's path
}

var shardDamages = []shardDamage{
	{"flipped-byte", func(t *testing.T, p, _, _ string) { testkit.FlipByte(t, p) }, ErrChecksum, "manifest says"},
	{"other-teacher-size-patched", func(t *testing.T, p, manPath, other string) {
		copyFile(t, other, p)
		patchEntry(t, manPath, filepath.Base(p), func(s *ShardEntry) {
			fi, _ := os.Stat(p)
			s.Bytes = fi.Size()
		})
	}, ErrChecksum, "manifest says"},
	{"other-teacher-size-and-sha256-patched", func(t *testing.T, p, manPath, other string) {
		copyFile(t, other, p)
		patchEntry(t, manPath, filepath.Base(p), func(s *ShardEntry) {
			fi, _ := os.Stat(p)
			s.Bytes = fi.Size()
			s.SHA256, _ = filehash.SHA256(p)
		})
	}, schema.ErrMismatch, "deitkd.teacher.sha256"},
	{"wrong-rows", func(t *testing.T, p, manPath, _ string) {
		patchEntry(t, manPath, filepath.Base(p), func(s *ShardEntry) { s.Rows += 2 })
	}, ErrContent, "manifest says"},
	{"truncated", func(t *testing.T, p, _, _ string) {
		fi, _ := os.Stat(p)
		if err := os.Truncate(p, fi.Size()-7); err != nil {
			t.Fatal(err)
		}
	}, ErrCorrupt, "manifest says"},
}

// TestResumeChecksShards damages a finished shard of a stopped store in
// ways its size does not show. A resumed writer extends the store, so it
// must refuse it as Verify would, naming the shard and what differs and
// saying what to do, and leave every file as it was: before, it checked the
// size alone, resumed, and the rerun ended "all labelled" on a store that
// verify, inspect and train then refused.
func TestResumeChecksShards(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	otherTeacher := md
	otherTeacher.Teacher.SHA256 = strings.Repeat("e7", 32)
	for _, layout := range []struct {
		name   string
		format Format
		shard  ShardSpec
	}{
		{"parquet", FormatParquet, ShardSpec{}},
		{"arrow-split", FormatArrow, ShardSpec{Index: 1, Count: 2}},
	} {
		for _, tc := range shardDamages {
			t.Run(layout.name+"/"+tc.name, func(t *testing.T) {
				opts := smallOpts(layout.format)
				opts.Shard = layout.shard
				dir, otherDir := t.TempDir(), t.TempDir()
				for _, s := range []struct {
					dir string
					md  schema.Metadata
				}{{dir, md}, {otherDir, otherTeacher}} {
					if err := writeUpTo(s.dir, s.md, opts, 1, 50); err != nil { // stopped early: 2 finished shards
						t.Fatal(err)
					}
				}
				name := shardFileName(layout.shard, 1, layout.format)
				p, manPath := filepath.Join(dir, name), filepath.Join(dir, manifestName(layout.shard))
				tc.damage(t, p, manPath, filepath.Join(otherDir, name))
				before := folderSums(t, dir)

				w, err := OpenWriter(dir, md, opts)
				if err == nil {
					w.Abort()
					t.Fatalf("resume accepted a store whose %s is damaged (%s)", name, tc.name)
				}
				if !errors.Is(err, tc.is) {
					t.Fatalf("error %v does not wrap %v", err, tc.is)
				}
				for _, want := range []string{p, tc.says, "labels verify " + manPath} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("error %q does not say %q", err, want)
					}
				}
				if after := folderSums(t, dir); !sameSums(before, after) {
					t.Fatalf("the refused resume changed the folder:\nbefore %v\nafter  %v", before, after)
				}
				t.Log(err)
			})
		}
	}
}

// TestResumeWithoutManifest: a folder whose manifest is gone but that holds
// a writer's finished part files is refused, naming the folder and the
// number of files, and the files are kept (before, the writer started a new
// manifest and deleted them as leftovers). Temporary files of a killed write
// are still removed, and another writer's parts are no concern.
func TestResumeWithoutManifest(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	split1 := ShardSpec{Index: 1, Count: 2}
	for _, tc := range []struct {
		name    string
		format  Format
		writer  ShardSpec // the writer whose manifest is removed
		reopen  ShardSpec // the writer that opens the folder then
		refused bool
	}{
		{"parquet", FormatParquet, ShardSpec{}, ShardSpec{}, true},
		{"arrow", FormatArrow, ShardSpec{}, ShardSpec{}, true},
		{"split-writer", FormatParquet, split1, split1, true},
		{"split-other-writer", FormatParquet, ShardSpec{Index: 0, Count: 2}, split1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := smallOpts(tc.format)
			opts.Shard = tc.writer
			if err := writeUpTo(dir, md, opts, 1, 50); err != nil {
				t.Fatal(err)
			}
			manName := manifestName(tc.writer)
			m, err := ReadManifest(filepath.Join(dir, manName))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, manName)); err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(dir, "."+shardFileName(tc.reopen, 7, tc.format)+".tmp")
			writeFile(t, tmp, []byte("a killed write"))
			before := folderSums(t, dir)
			opts.Shard = tc.reopen
			w, err := OpenWriter(dir, md, opts)
			if !tc.refused {
				if err != nil {
					t.Fatal(err)
				}
				w.Abort()
				if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("temporary file %s left: %v", tmp, err)
				}
				return
			}
			if err == nil {
				w.Abort()
				t.Fatalf("opened a folder of finished parts without %s", manName)
			}
			for _, want := range []string{dir, manName + " is missing", fmt.Sprintf("%d finished part files", len(m.Shards))} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not say %q", err, want)
				}
			}
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error %v does not wrap ErrManifest", err)
			}
			if after := folderSums(t, dir); !sameSums(before, after) {
				t.Fatalf("the refused open changed the folder:\nbefore %v\nafter  %v", before, after)
			}
			t.Log(err)
		})
	}
	t.Run("temporary-files-only", func(t *testing.T) {
		dir := t.TempDir()
		tmp := filepath.Join(dir, "."+shardFileName(ShardSpec{}, 0, FormatParquet)+".tmp")
		writeFile(t, tmp, []byte("a killed write"))
		w, err := OpenWriter(dir, md, smallOpts(FormatParquet))
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temporary file %s left: %v", tmp, err)
		}
	})
}

// TestMergeChecksShards: Merge publishes a split store as finished, so it
// checks each shard as Verify does; before, it checked sizes and merged
// damaged shards into a manifest.json that Verify then refused. A refused
// merge writes no manifest.json.
func TestMergeChecksShards(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	otherTeacher := md
	otherTeacher.Teacher.SHA256 = strings.Repeat("e7", 32)
	for _, tc := range shardDamages {
		t.Run(tc.name, func(t *testing.T) {
			dir, otherDir := t.TempDir(), t.TempDir()
			for i := 0; i < 2; i++ {
				opts := smallOpts(FormatParquet)
				opts.Shard = ShardSpec{Index: i, Count: 2}
				if err := writeStore(dir, md, opts, 1); err != nil {
					t.Fatal(err)
				}
				if err := writeStore(otherDir, otherTeacher, opts, 1); err != nil {
					t.Fatal(err)
				}
			}
			spec := ShardSpec{Index: 1, Count: 2}
			name := shardFileName(spec, 1, FormatParquet)
			p := filepath.Join(dir, name)
			tc.damage(t, p, filepath.Join(dir, manifestName(spec)), filepath.Join(otherDir, name))
			_, err := Merge(context.Background(), dir)
			if err == nil {
				t.Fatalf("merged a store whose %s is damaged (%s)", name, tc.name)
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Merge: %v; want %v naming %s and saying %q", err, tc.is, p, tc.says)
			}
			if _, err := os.Stat(filepath.Join(dir, "manifest.json")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused merge wrote manifest.json: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestMergeOtherWritersImage: a writer's part that holds an image of
// another writer (sha256 and size patched into its manifest) is refused
// with ErrNotMyShard, as before Merge checked shards as Verify does.
func TestMergeOtherWritersImage(t *testing.T) {
	md := testMeta(schema.ModeTopK, schema.Float16, 20, 5, 2, 60)
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		opts := smallOpts(FormatParquet)
		opts.Shard = ShardSpec{Index: i, Count: 2}
		if err := writeStore(dir, md, opts, 1); err != nil {
			t.Fatal(err)
		}
	}
	spec := ShardSpec{Index: 1, Count: 2}
	p := rewriteIndices(t, dir, manifestName(spec), shardFileName(spec, 0, FormatParquet), func(ix []int64) {
		for i := 0; i < md.Views.Count; i++ {
			ix[i] = 0 // image 1 becomes image 0, writer 0's
		}
	})
	_, err := Merge(context.Background(), dir)
	if !errors.Is(err, ErrNotMyShard) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "image 0 in a part of writer 1-of-2") {
		t.Fatalf("Merge: %v; want ErrNotMyShard naming %s and image 0", err, p)
	}
}

// folderSums returns the sha256 of every file in dir, by name.
func folderSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".lock") {
			continue
		}
		if sums[e.Name()], err = filehash.SHA256(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return sums
}

func sameSums(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// patchEntry edits the manifest entry of shard file and keeps the totals
// adding up, so that ParseManifest accepts the result.
func patchEntry(t *testing.T, manPath, file string, edit func(*ShardEntry)) {
	t.Helper()
	m, err := ReadManifest(manPath)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range m.Shards {
		if m.Shards[i].File == file {
			s := &m.Shards[i]
			rows, images := s.Rows, s.Images
			edit(s)
			m.Rows += s.Rows - rows
			m.Images += s.Images - images
			found = true
		}
	}
	if !found {
		t.Fatalf("%s lists no %s", manPath, file)
	}
	if err := m.write(manPath); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
