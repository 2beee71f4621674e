package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/schema"
)

// Merge combines the per-writer manifests of a split store (written by n
// writers with Options.Shard i/n) into manifest.json. It checks that all n
// manifests are present and agree (metadata except created_by, file
// format), that every listed shard passes Verify's checks of a shard (on
// disk with its size and sha256, the store's schema and configuration, the
// rows the manifest lists, in order, every view of each image, no image
// twice), that each writer stored only its own images (index ≡ i mod n),
// and that stored and failed images together cover the scope. It
// reads the whole store once. The failure logs are combined into
// failures/failures.parquet. Merge is idempotent.
//
// The writers must have been run for the same scope (the same --limit, or
// none): Merge refuses writers with differing limits, naming both, rather
// than taking the larger and calling the other's writer incomplete. The
// merged manifest records that limit, and coverage is checked within it. It
// lists the shards by first image index (then file name).
//
// Merge holds the whole store's lock and each writer's while it runs: it is
// refused with ErrLocked while a writer of the store (or another merge) is
// at work, and a writer started meanwhile is refused.
func Merge(ctx context.Context, dir string) (*Manifest, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("merge %s: no such folder (%w)", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("merge %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("merge %s: not a folder; merge takes the folder of a store split among writers (i of n)", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "manifest.*-of-*.json"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("merge %s: %w: no per-writer manifests (manifest.i-of-n.json)", dir, ErrIncomplete)
	}
	lock, err := lockDir(dir, lockName(ShardSpec{}))
	if err != nil {
		return nil, err
	}
	defer lock.release()
	mans := map[int]*Manifest{}
	n := 0
	var first *Manifest
	var firstPath string
	for _, p := range paths {
		m, err := ReadManifest(p)
		if err != nil {
			return nil, fmt.Errorf("merge %s: %w", dir, err)
		}
		if m.Shard == nil {
			return nil, fmt.Errorf("merge %s: manifest %s: %w: no shard spec", dir, p, ErrManifest)
		}
		// Read it again under its writer's lock: the writer may have been
		// running when it was first read.
		wl, err := lockDir(dir, lockName(*m.Shard))
		if err != nil {
			return nil, err
		}
		defer wl.release()
		if m, err = ReadManifest(p); err != nil {
			return nil, fmt.Errorf("merge %s: %w", dir, err)
		}
		if m.Shard == nil {
			return nil, fmt.Errorf("merge %s: manifest %s: %w: no shard spec", dir, p, ErrManifest)
		}
		if first == nil {
			first, firstPath, n = m, p, m.Shard.Count
		}
		if m.Shard.Count != n {
			return nil, fmt.Errorf("merge %s: manifest %s: %w: writer %s, but %s is of %d", dir, p, ErrManifest, m.Shard, firstPath, n)
		}
		if err := schema.Diff(first.Meta(), m.Meta()); err != nil {
			return nil, fmt.Errorf("merge %s: manifest %s disagrees with %s: %w", dir, p, firstPath, err)
		}
		if m.FileFormat != first.FileFormat {
			return nil, fmt.Errorf("merge %s: manifest %s: %w: format %s, %s has %s", dir, p, schema.ErrMismatch, m.FileFormat, firstPath, first.FileFormat)
		}
		if m.Limit != first.Limit {
			return nil, fmt.Errorf("merge %s: manifest %s: %w: writer %s was run for %s, but %s for %s; rerun the writers with the same image limit (or none)",
				dir, p, schema.ErrMismatch, m.Shard, limitText(m.Limit), firstPath, limitText(first.Limit))
		}
		mans[m.Shard.Index] = m
	}
	for i := 0; i < n; i++ {
		if mans[i] == nil {
			return nil, fmt.Errorf("merge %s: %w: manifest.%d-of-%d.json is missing", dir, ErrIncomplete, i, n)
		}
	}
	out, err := newManifest(first.Meta(), first.FileFormat, ShardSpec{})
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", dir, err)
	}
	out.Limit = first.Limit
	// One verifier for all the writers, so that no image is in two of them.
	v := newVerifier(first.Meta())
	var failures []Failure
	for i := 0; i < n; i++ {
		m := mans[i]
		r := &Reader{Dir: dir, Manifest: m, Meta: m.Meta(), mem: memory.DefaultAllocator}
		if r.Schema, err = schema.NewSchema(r.Meta); err != nil {
			return nil, fmt.Errorf("merge %s: %w", dir, err)
		}
		if err := checkShards(ctx, r, v); err != nil {
			return nil, fmt.Errorf("merge %s: %w", dir, err)
		}
		for _, s := range m.Shards {
			out.Shards = append(out.Shards, s)
			out.Rows += s.Rows
			out.Images += s.Images
		}
		for _, e := range m.Failures {
			fs, err := readFailures(dir, e, memory.DefaultAllocator)
			if err != nil {
				return nil, fmt.Errorf("merge %s: %w", dir, err)
			}
			failures = append(failures, fs...)
		}
	}
	covered := v.seen
	for _, f := range failures {
		covered.Add(f.ImageIndex)
	}
	end := out.scopeEnd()
	var missing []int64
	var nmissing int64
	for i := int64(0); i < end; i++ {
		if !covered.Contains(i) {
			if len(missing) < 5 {
				missing = append(missing, i)
			}
			nmissing++
		}
	}
	if nmissing > 0 {
		return nil, fmt.Errorf("merge %s: %w: %d of %d images (%s) neither stored nor failed (first: %v); finish the writers first",
			dir, ErrIncomplete, nmissing, end, limitText(out.Limit), missing)
	}
	// By first image index, as the shards of a single writer are: a reader
	// that takes them in manifest order meets the writers' parts
	// interleaved, each part sorted, rather than writer after writer.
	sort.SliceStable(out.Shards, func(a, b int) bool {
		sa, sb := out.Shards[a], out.Shards[b]
		if sa.FirstImageIndex != sb.FirstImageIndex {
			return sa.FirstImageIndex < sb.FirstImageIndex
		}
		return sa.File < sb.File
	})
	if len(failures) > 0 {
		sort.SliceStable(failures, func(a, b int) bool { return failures[a].ImageIndex < failures[b].ImageIndex })
		e, err := writeFailures(dir, failureFileName(ShardSpec{}), failures, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("merge %s: %w", dir, err)
		}
		out.Failures = []FailureEntry{e}
	} else {
		os.Remove(filepath.Join(dir, filepath.FromSlash(failureFileName(ShardSpec{}))))
	}
	if err := out.write(filepath.Join(dir, "manifest.json")); err != nil {
		return nil, fmt.Errorf("merge %s: %w", dir, err)
	}
	return out, nil
}

// limitText names a store's scope for messages.
func limitText(limit int64) string {
	if limit == 0 {
		return "the whole dataset"
	}
	return fmt.Sprintf("limit %d", limit)
}
