package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/utf8esc"
	"github.com/deitkd/deitkd/schema"
)

// DefaultShardRows is the default number of rows per shard. At 50,000 rows a
// shard's Parquet footer and metadata (a few KB, including the class names
// in the schema) are well under 0.1 byte per row even at top-10, a killed run
// loses at most a few minutes of teacher time, and ImageNet-1k with 10 views
// makes about 260 files: few enough for any glob, many enough to split
// across readers.
const DefaultShardRows = 50_000

// DefaultRowGroupRows bounds a row group, and so the writer's memory: rows
// are buffered as Arrow arrays until a row group is full (40 MB at full
// float32 with K=1000). Readers decode a row group at a time.
const DefaultRowGroupRows = 10_000

// Options configures a Writer. The zero value means defaults.
type Options struct {
	Format       Format    // FormatParquet (default) or FormatArrow
	ShardRows    int       // rows per shard, DefaultShardRows if 0; a shard ends at an image boundary
	RowGroupRows int       // rows per row group (record batch in .arrow), DefaultRowGroupRows if 0
	Shard        ShardSpec // which writer of a split store this is; zero: the only one
	// Limit, when positive, is the run's scope: the images with index <
	// Limit (precompute --limit). The manifest records it, Verify checks the
	// store against it, and Write refuses rows beyond it. Resuming a store
	// with another Limit keeps the larger scope (no limit is the largest):
	// a rerun with a bigger limit, or none, extends the store.
	Limit     int64
	Allocator memory.Allocator // memory.DefaultAllocator if nil
}

func (o *Options) applyDefaults() {
	if o.Format == "" {
		o.Format = FormatParquet
	}
	if o.ShardRows <= 0 {
		o.ShardRows = DefaultShardRows
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.RowGroupRows > o.ShardRows {
		o.RowGroupRows = o.ShardRows
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
}

// Writer appends label rows to a store. Rows must arrive in ascending
// (image_index, view) order, all views of an image before the next image; a
// shard never splits an image, so resume by image is exact. Not safe for
// concurrent use.
type Writer struct {
	dir      string
	md       schema.Metadata
	sch      *arrow.Schema
	opts     Options
	man      *Manifest
	manPath  string
	done     IndexSet
	failures []Failure
	nextPart int
	lock     *dirLock // held from OpenWriter to Close or Abort

	rb        *rowBuilder
	sf        *shardFile
	shardRows int64
	images    int64
	first     int64
	lastIndex int64
	lastView  int32
	started   bool // a row has been written in this session
	closed    bool
}

// OpenWriter creates the store dir for md, or resumes the store already
// there. Resuming requires the same metadata (created_by aside), format and
// shard spec, and fails otherwise with an error that names the first
// differing key. It also requires every shard the manifest lists to pass
// Verify's checks of a shard (size, sha256, schema, rows, order), which
// reads the finished shards once, and fails otherwise naming the shard and
// what differs. A folder that holds finished part files of this writer but
// not its manifest is refused, the files kept. On resume it removes what a
// killed writer left behind: temporary files, and part files of this writer
// that the manifest does not list (renamed just before the kill). Done
// reports the finished images.
// Failures logged by earlier sessions are dropped: those images are not done,
// so the run retries them and logs them again if they fail again.
//
// The writer holds a lock on the folder until Close or Abort (one per writer
// of a split store): a second writer of the same store, in this process or
// another, is refused at once with an error wrapping ErrLocked that names
// the holder's pid. A killed writer's lock goes with its process.
func OpenWriter(dir string, md schema.Metadata, opts Options) (_ *Writer, err error) {
	opts.applyDefaults()
	if opts.Shard.split() && (opts.Shard.Index < 0 || opts.Shard.Index >= opts.Shard.Count) {
		return nil, fmt.Errorf("open store %s: shard %d of %d", dir, opts.Shard.Index, opts.Shard.Count)
	}
	sch, err := schema.NewSchema(md)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	lock, err := lockDir(dir, lockName(opts.Shard))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.release()
		}
	}()
	w := &Writer{dir: dir, md: md, sch: sch, opts: opts, manPath: filepath.Join(dir, manifestName(opts.Shard)), lock: lock}
	if err := checkLayout(dir, opts.Shard); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	man, err := ReadManifest(w.manPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := w.checkNoParts(); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if w.man, err = newManifest(md, opts.Format, opts.Shard); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		w.man.Limit = normLimit(opts.Limit, md.Dataset.ImageCount)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	default:
		if err := w.resume(man); err != nil {
			return nil, fmt.Errorf("open store %s: resume refused: %w", dir, err)
		}
	}
	if err := w.cleanup(); err != nil {
		return nil, err
	}
	// Write the manifest now so that a second run with another configuration
	// is refused even before the first shard is finished.
	if err := w.man.write(w.manPath); err != nil {
		return nil, err
	}
	w.rb = newRowBuilder(sch, md, opts.Allocator)
	return w, nil
}

func (w *Writer) resume(man *Manifest) error {
	if err := schema.Diff(man.Meta(), w.md); err != nil {
		return err
	}
	if man.FileFormat != w.opts.Format {
		return fmt.Errorf("%w: file format: store has %s, run wants %s", schema.ErrMismatch, man.FileFormat, w.opts.Format)
	}
	mm, err := w.md.EncodeMap()
	if err != nil {
		return err
	}
	man.Metadata, man.meta = mm, w.md // the new created_by
	man.Failures = nil
	man.Limit = widenLimit(man.Limit, normLimit(w.opts.Limit, w.md.Dataset.ImageCount))
	w.man = man
	for _, s := range man.Shards {
		n, _, err := ownsPart(s.File, w.opts.Shard, w.opts.Format)
		if err != nil {
			return err
		}
		if n >= w.nextPart {
			w.nextPart = n + 1
		}
	}
	// The new shards join these, so check them as Verify would: a size
	// alone passes a damaged shard or another teacher's.
	r := &Reader{Dir: w.dir, Manifest: man, Meta: w.md, Schema: w.sch, mem: w.opts.Allocator}
	v := newVerifier(w.md)
	if err := checkShards(context.Background(), r, v); err != nil {
		return fmt.Errorf("%w; the finished shards must be intact to be extended: run `labels verify %s` to list every bad one, "+
			"then delete each with its entry in %s (and its rows and images from the totals) to relabel its images, or write to a new folder",
			err, w.manPath, filepath.Base(w.manPath))
	}
	w.done = v.seen
	return nil
}

// checkNoParts refuses a folder without this writer's manifest that holds
// finished part files of its name: the manifest was lost, and starting a
// new one would delete them as leftovers of a killed write. (A writer writes
// its manifest before its first part, so no kill leaves parts without one.)
// Temporary files are no concern: cleanup removes them.
func (w *Writer) checkNoParts() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	var parts []string
	for _, e := range ents {
		name := e.Name()
		if !partName.MatchString(name) {
			continue // not a finished part: a temporary file, or another file
		}
		for _, f := range []Format{FormatParquet, FormatArrow} {
			if _, ok, _ := ownsPart(name, w.opts.Shard, f); ok {
				parts = append(parts, name)
			}
		}
	}
	if len(parts) == 0 {
		return nil
	}
	list := parts[0]
	if len(parts) > 1 {
		list += ", …"
	}
	man := filepath.Base(w.manPath)
	return fmt.Errorf("%w: %s is missing, yet the folder holds %d finished part files of this writer (%s): "+
		"they cannot be resumed without it, and a new store here would delete them; "+
		"restore %s, or move the part files away, or write to a new folder",
		ErrManifest, man, len(parts), list, man)
}

// cleanup removes temporary files and unlisted parts of this writer.
func (w *Writer) cleanup() error {
	listed := map[string]bool{}
	for _, s := range w.man.Shards {
		listed[s.File] = true
	}
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("open store %s: %w", w.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		_, ok, err := ownsPart(name, w.opts.Shard, w.opts.Format)
		if err != nil {
			return fmt.Errorf("open store %s: %w", w.dir, err)
		}
		if !ok || listed[name] {
			continue
		}
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
			return fmt.Errorf("open store %s: remove leftover %s: %w", w.dir, name, err)
		}
	}
	return nil
}

// Done returns the image indices already stored in finished shards. The
// pipeline skips them. The set must not be modified.
func (w *Writer) Done() *IndexSet { return &w.done }

// Owns reports whether image index i belongs to this writer of a split store.
func (w *Writer) Owns(i int64) bool {
	return !w.opts.Shard.split() || i%int64(w.opts.Shard.Count) == int64(w.opts.Shard.Index)
}

// Write appends one row. The writer keeps nothing of r.Logits after return.
func (w *Writer) Write(r Row) error {
	if w.closed {
		return ErrClosed
	}
	if err := checkRow(&r, w.md.NumClasses); err != nil {
		return fmt.Errorf("write %s view %d: %w", r.ImageID, r.View, err)
	}
	if w.md.SchemaVersion < 2 && (len(r.Augment.Ops) > 0 || r.Augment.Erase != (dataset.Erase{}) || r.Mix != nil) {
		return fmt.Errorf("write %s view %d: %w: replay parameters in a store of schema version %d, which has no columns for them", r.ImageID, r.View, ErrRow, w.md.SchemaVersion)
	}
	if !w.Owns(r.ImageIndex) {
		return fmt.Errorf("write %s: %w: index %d is not ≡ %d (mod %d)", r.ImageID, ErrNotMyShard, r.ImageIndex, w.opts.Shard.Index, w.opts.Shard.Count)
	}
	if int(r.View) >= w.md.Views.Count {
		return fmt.Errorf("write %s view %d: %w: store has %d views", r.ImageID, r.View, ErrRow, w.md.Views.Count)
	}
	if w.md.Dataset.ImageCount > 0 && r.ImageIndex >= w.md.Dataset.ImageCount {
		return fmt.Errorf("write %s: %w: index %d, dataset has %d images", r.ImageID, ErrRow, r.ImageIndex, w.md.Dataset.ImageCount)
	}
	if w.man.Limit > 0 && r.ImageIndex >= w.man.Limit {
		return fmt.Errorf("write %s: %w: index %d, the store's limit is %d", r.ImageID, ErrRow, r.ImageIndex, w.man.Limit)
	}
	newImage := !w.started || r.ImageIndex != w.lastIndex
	if w.started && (r.ImageIndex < w.lastIndex || (!newImage && r.View <= w.lastView)) {
		return fmt.Errorf("write %s view %d: %w: after image %d view %d", r.ImageID, r.View, ErrOrder, w.lastIndex, w.lastView)
	}
	if newImage && w.done.Contains(r.ImageIndex) {
		return fmt.Errorf("write %s: %w: image %d is already stored", r.ImageID, ErrOrder, r.ImageIndex)
	}
	if newImage && w.shardRows >= int64(w.opts.ShardRows) {
		if err := w.flushShard(); err != nil {
			return err
		}
	}
	if err := w.rb.append(&r); err != nil {
		return fmt.Errorf("write %s view %d: %w", r.ImageID, r.View, err)
	}
	if w.shardRows == 0 {
		w.first = r.ImageIndex
	}
	if newImage {
		w.images++
	}
	w.shardRows++
	w.started, w.lastIndex, w.lastView = true, r.ImageIndex, r.View
	if w.rb.rows >= w.opts.RowGroupRows {
		return w.writeRowGroup()
	}
	return nil
}

// Fail records that an image could not be labelled. The log is written with
// the next finished shard and at Close. Its columns are utf8: an ImageID that
// is not valid UTF-8 is refused (ErrRow), as Write refuses it; bytes of Stage
// and Err that are not UTF-8 (an OS error naming a file as on disk) are
// written as \xHH escapes (utf8esc.Escape).
func (w *Writer) Fail(f Failure) error {
	if w.closed {
		return ErrClosed
	}
	if !utf8.ValidString(f.ImageID) {
		return fmt.Errorf("%w: failure of image %d: image_id %q is not valid UTF-8", ErrRow, f.ImageIndex, f.ImageID)
	}
	f.Stage, f.Err = utf8esc.Escape(f.Stage), utf8esc.Escape(f.Err)
	w.failures = append(w.failures, f)
	return nil
}

func (w *Writer) writeRowGroup() error {
	if w.rb.rows == 0 {
		return nil
	}
	if w.sf == nil {
		name := shardFileName(w.opts.Shard, w.nextPart, w.opts.Format)
		sf, err := createShardFile(w.dir, name, w.sch, w.md, w.opts.Format, w.opts.RowGroupRows, w.opts.Allocator)
		if err != nil {
			return err
		}
		w.sf = sf
	}
	rec := w.rb.record()
	defer rec.Release()
	return w.sf.write(rec)
}

// flushShard finishes the current shard and lists it in the manifest.
func (w *Writer) flushShard() error {
	if w.shardRows == 0 {
		return w.writeLogs()
	}
	if err := w.writeRowGroup(); err != nil {
		return err
	}
	size, sum, err := w.sf.finish()
	if err != nil {
		return err
	}
	w.man.Shards = append(w.man.Shards, ShardEntry{
		File: filepath.Base(w.sf.final), Rows: w.shardRows, Images: w.images, Bytes: size, SHA256: sum,
		FirstImageIndex: w.first, LastImageIndex: w.lastIndex,
	})
	w.man.Rows += w.shardRows
	w.man.Images += w.images
	w.sf, w.shardRows, w.images = nil, 0, 0
	w.nextPart++
	return w.writeLogs()
}

// writeLogs writes the failure log (if any) and then the manifest.
func (w *Writer) writeLogs() error {
	w.man.Failures = nil
	if len(w.failures) == 0 {
		// An earlier session's log, whose images this session retries.
		os.Remove(filepath.Join(w.dir, filepath.FromSlash(failureFileName(w.opts.Shard))))
	}
	if len(w.failures) > 0 {
		sort.SliceStable(w.failures, func(i, j int) bool { return w.failures[i].ImageIndex < w.failures[j].ImageIndex })
		e, err := writeFailures(w.dir, failureFileName(w.opts.Shard), w.failures, w.opts.Allocator)
		if err != nil {
			return err
		}
		w.man.Failures = []FailureEntry{e}
	}
	return w.man.write(w.manPath)
}

// Close finishes the last shard and writes the manifest. After an error the
// store stays resumable from its last finished shard.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.flushShard()
	w.closed = true
	if w.sf != nil {
		w.sf.abort()
	}
	w.rb.release()
	w.lock.release()
	return err
}

// Abort drops the shard in progress without finishing it, as a kill would.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	if w.sf != nil {
		w.sf.abort()
	}
	w.rb.release()
	w.lock.release()
}

// Manifest returns a copy of the manifest as last written.
func (w *Writer) Manifest() Manifest {
	m := *w.man
	m.Shards = append([]ShardEntry(nil), w.man.Shards...)
	return m
}

func checkSize(path string, s ShardEntry) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("shard %s: %w: listed in the manifest but not on disk", path, ErrMissingShard)
	}
	if err != nil {
		return fmt.Errorf("shard %s: %w", path, err)
	}
	if fi.Size() != s.Bytes {
		return fmt.Errorf("shard %s: %w: %d bytes, manifest says %d (truncated?)", path, ErrCorrupt, fi.Size(), s.Bytes)
	}
	return nil
}

// checkLayout refuses to mix a single writer and split writers in one
// folder: a whole store's manifest.json next to per-writer manifests, or a
// split writer next to a whole store's parts.
func checkLayout(dir string, spec ShardSpec) error {
	if !spec.split() {
		if m, _ := filepath.Glob(filepath.Join(dir, "manifest.*-of-*.json")); len(m) > 0 {
			return fmt.Errorf("%w: the folder holds a split store (%s); write it as one of its writers (i of n)", schema.ErrMismatch, filepath.Base(m[0]))
		}
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "manifest.*-of-*.json")); len(m) > 0 {
		if want := "-of-" + fmt.Sprint(spec.Count) + ".json"; !strings.HasSuffix(m[0], want) {
			return fmt.Errorf("%w: the folder is split by %s, run wants %s", schema.ErrMismatch, filepath.Base(m[0]), spec)
		}
	}
	whole, err := ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil // none, or unreadable: then there are no whole-store parts to protect
	}
	for _, s := range whole.Shards {
		if !strings.Contains(s.File, "-of-") {
			return fmt.Errorf("%w: the folder holds a store written by a single writer; run wants writer %s", schema.ErrMismatch, spec)
		}
	}
	return nil
}
