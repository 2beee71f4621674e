package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/schema"
)

// Reader reads a finished store. Safe for concurrent use.
type Reader struct {
	Dir      string
	Manifest *Manifest
	Meta     schema.Metadata
	Schema   *arrow.Schema // the full schema of the store's files
	mem      memory.Allocator
}

// OpenReader opens the store at path: a store folder (its manifest.json) or
// a manifest file. It checks the manifest and that every listed shard is
// present with the listed size; checksums and contents are Verify's job.
func OpenReader(path string) (*Reader, error) {
	manPath, err := ManifestPath(path)
	if err != nil {
		return nil, err
	}
	man, err := ReadManifest(manPath)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	r := &Reader{Dir: filepath.Dir(manPath), Manifest: man, Meta: man.Meta(), mem: memory.DefaultAllocator}
	if r.Schema, err = schema.NewSchema(r.Meta); err != nil {
		return nil, fmt.Errorf("open store %s: %w", r.Dir, err)
	}
	for _, s := range man.Shards {
		if err := checkSize(filepath.Join(r.Dir, s.File), s); err != nil {
			return nil, fmt.Errorf("open store %s: %w", r.Dir, err)
		}
	}
	return r, nil
}

// ShardPath returns the path of shard i of the manifest.
func (r *Reader) ShardPath(i int) string { return filepath.Join(r.Dir, r.Manifest.Shards[i].File) }

// Columns maps column names to field indices; an unknown name is an error.
func (r *Reader) Columns(names ...string) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out := make([]int, len(names))
	for i, n := range names {
		idx := r.Schema.FieldIndices(n)
		if len(idx) != 1 {
			return nil, fmt.Errorf("store %s: %w: no column %q in mode %s", r.Dir, ErrContent, n, r.Meta.Store.Mode)
		}
		out[i] = idx[0]
	}
	return out, nil
}

// ScanShard streams shard i as records holding the named columns (all if
// none), in file order. The shard's schema is validated against the
// manifest first, so a file of another schema version or configuration
// fails naming the file. Records are released when fn returns; fn must
// Retain what it keeps.
func (r *Reader) ScanShard(ctx context.Context, i int, columns []string, fn func(arrow.RecordBatch) error) error {
	cols, err := r.Columns(columns...)
	if err != nil {
		return err
	}
	sr, err := r.openShard(i)
	if err != nil {
		return err
	}
	defer sr.Close()
	return sr.scan(ctx, cols, fn)
}

// Scan streams every shard in manifest order; see ScanShard.
func (r *Reader) Scan(ctx context.Context, columns []string, fn func(arrow.RecordBatch) error) error {
	for i := range r.Manifest.Shards {
		if err := r.ScanShard(ctx, i, columns, fn); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) openShard(i int) (*shardReader, error) {
	path := r.ShardPath(i)
	sr, err := openShard(path, r.Manifest.FileFormat, r.mem)
	if err != nil {
		return nil, err
	}
	if err := schema.Validate(sr.schema, r.Meta); err != nil {
		sr.Close()
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	if sr.rows != r.Manifest.Shards[i].Rows {
		sr.Close()
		return nil, fmt.Errorf("shard %s: %w: %d rows, manifest says %d", path, ErrContent, sr.rows, r.Manifest.Shards[i].Rows)
	}
	return sr, nil
}

// Failures returns the failure log.
func (r *Reader) Failures() ([]Failure, error) {
	var out []Failure
	for _, e := range r.Manifest.Failures {
		fs, err := readFailures(r.Dir, e, r.mem)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

// ManifestPath resolves a store (its folder, or its manifest file as it is) to its
// manifest.json, with a hint when only per-writer manifests are there.
func ManifestPath(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("open store %s: no such folder or manifest (%w)", path, fs.ErrNotExist)
	}
	if err != nil || !fi.IsDir() {
		return path, nil
	}
	manPath := filepath.Join(path, "manifest.json")
	if _, err := os.Stat(manPath); errors.Is(err, fs.ErrNotExist) {
		if parts, _ := filepath.Glob(filepath.Join(path, "manifest.*-of-*.json")); len(parts) > 0 {
			return "", fmt.Errorf("open store %s: %w: no manifest.json, only per-writer manifests; run `labels merge %s`", path, ErrIncomplete, path)
		}
	}
	return manPath, nil
}

// ManifestSHA256 is the hex sha256 of the manifest of the store at path (a folder or its
// manifest file): the store's identity, since the manifest lists every shard with its checksum.
func ManifestSHA256(path string) (string, error) {
	man, err := ManifestPath(path)
	if err != nil {
		return "", err
	}
	return filehash.SHA256(man)
}
