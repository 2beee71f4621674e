package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deitkd/deitkd/internal/filehash"
	"github.com/deitkd/deitkd/schema"
)

// Problem is one thing Verify found wrong, with the file it concerns.
type Problem struct {
	File string
	Err  error
}

func (p Problem) String() string { return p.Err.Error() }

// VerifyReport is what Verify found.
type VerifyReport struct {
	Shards   int
	Rows     int64
	Images   int64
	Failures int
	Problems []Problem

	// The scope the missing-images check covered: the image indices below
	// ScopeEnd of a dataset of ImageCount images (ScopeEnd < ImageCount for a
	// store written with a limit, unless VerifyOptions.Complete), only those
	// ≡ Writer.Index (mod Writer.Count) for a per-writer manifest.
	ScopeEnd   int64
	ImageCount int64
	Writer     *ShardSpec
	// Unreadable is the number of shards that could not be read (missing,
	// wrong size or checksum, bad content): their images are unknown, so
	// the missing-images check leaves their index ranges out.
	Unreadable int
}

// OK reports whether no problem was found.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

// Scope describes what the missing-images check covered, e.g. "limit 7000 of
// 10000 images" or "all 10000 images", with the writer for a per-writer
// manifest.
func (v *VerifyReport) Scope() string {
	s := fmt.Sprintf("all %d images", v.ImageCount)
	if v.ScopeEnd < v.ImageCount {
		s = fmt.Sprintf("limit %d of %d images", v.ScopeEnd, v.ImageCount)
	}
	if v.Writer != nil {
		s += fmt.Sprintf(", those ≡ %d (mod %d)", v.Writer.Index, v.Writer.Count)
	}
	return s
}

// VerifyOptions configures VerifyWith. The zero value is Verify's.
type VerifyOptions struct {
	// Complete asks for the whole dataset: a store written with a limit
	// (precompute --limit) is then incomplete.
	Complete bool
}

// Verify checks a whole store: the manifest; for each shard its presence,
// size, sha256, schema (version and configuration), row count, sort order
// by (image_index, view), image index range, and views 0..V-1 of each image;
// no (image_id, view) twice across shards; no label file in the folder that
// the manifest does not list; the failure log's checksum; and that every
// image index in the store's scope is either stored or in the failure log.
// The scope is the manifest's: the images below its limit (the whole
// dataset if it has none), and for a per-writer manifest only that writer's
// indices. The index ranges of shards that could not be read are left out
// of that check: their problem is reported, and their images are unknown.
// It returns an error only when the manifest itself cannot be read;
// everything else is a Problem, and it goes on to find them all.
func Verify(ctx context.Context, path string) (*VerifyReport, error) {
	return VerifyWith(ctx, path, VerifyOptions{})
}

// VerifyWith is Verify with options.
func VerifyWith(ctx context.Context, path string, opts VerifyOptions) (*VerifyReport, error) {
	r, err := openForVerify(path)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Shards: len(r.Manifest.Shards), ImageCount: r.Meta.Dataset.ImageCount, ScopeEnd: r.Manifest.scopeEnd(), Writer: r.Manifest.Shard}
	if opts.Complete {
		rep.ScopeEnd = rep.ImageCount
	}
	add := func(file string, err error) { rep.Problems = append(rep.Problems, Problem{File: file, Err: err}) }
	v := newVerifier(r.Meta)
	var unread []ShardEntry
	for i, s := range r.Manifest.Shards {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := r.ShardPath(i)
		if err := checkFile(p, s); err != nil {
			add(p, err)
			unread = append(unread, s)
			continue
		}
		if err := v.shard(ctx, r, i); err != nil {
			add(p, err)
			unread = append(unread, s)
		}
		rep.Rows += s.Rows
		rep.Images += s.Images
	}
	rep.Unreadable = len(unread)
	// Label files the manifest does not list would be read by a glob.
	listed := map[string]bool{}
	for _, s := range r.Manifest.Shards {
		listed[s.File] = true
	}
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", r.Dir, err)
	}
	for _, e := range ents {
		n := e.Name()
		if (strings.HasSuffix(n, ".parquet") || strings.HasSuffix(n, ".arrow")) && !listed[n] && !otherWriters(n, r.Manifest.Shard) {
			p := filepath.Join(r.Dir, n)
			add(p, fmt.Errorf("%s: %w: not listed in the manifest, yet a glob over the store reads it", p, ErrContent))
		}
	}
	failed := IndexSet{}
	fs, err := r.Failures()
	if err != nil {
		add(filepath.Join(r.Dir, "failures"), err)
	}
	rep.Failures = len(fs)
	for _, f := range fs {
		failed.Add(f.ImageIndex)
		if !utf8.ValidString(f.ImageID) || !utf8.ValidString(f.Stage) || !utf8.ValidString(f.Err) {
			add(filepath.Join(r.Dir, "failures"), fmt.Errorf("failure log: %w: image %d (%q): a utf8 column is not valid UTF-8", ErrContent, f.ImageIndex, f.ImageID))
		}
	}
	var missing []int64
	var nmissing, inScope int64
	for i := int64(0); i < rep.ScopeEnd; i++ {
		if w := rep.Writer; w != nil && i%int64(w.Count) != int64(w.Index) {
			continue
		}
		inScope++
		if !v.seen.Contains(i) && !failed.Contains(i) && !inUnread(i, unread) {
			if len(missing) < 5 {
				missing = append(missing, i)
			}
			nmissing++
		}
	}
	if nmissing > 0 {
		mp := filepath.Join(r.Dir, "manifest.json")
		if w := r.Manifest.Shard; w != nil {
			mp = filepath.Join(r.Dir, manifestName(*w))
		}
		hint := ""
		if rep.ScopeEnd > r.Manifest.scopeEnd() {
			hint = fmt.Sprintf("; the store was written with limit %d", r.Manifest.Limit)
		}
		if len(unread) > 0 {
			hint += fmt.Sprintf("; images of the %d unreadable shard(s) not counted", len(unread))
		}
		add(mp, fmt.Errorf("store %s: %w: %d of %d image indices in scope (%s) neither stored nor in the failure log (first: %v)%s",
			r.Dir, ErrIncomplete, nmissing, inScope, rep.Scope(), missing, hint))
	}
	return rep, nil
}

// otherWriters reports whether file name is a part of another writer than
// w of a split store: not this per-writer manifest's to list.
func otherWriters(name string, w *ShardSpec) bool {
	if w == nil {
		return false
	}
	sub := partName.FindStringSubmatch(name)
	if sub == nil || sub[1] == "" {
		return false
	}
	spec, _, err := partOf(sub)
	return err == nil && spec.Count == w.Count && spec.Index != w.Index
}

// inUnread reports whether image index i may be in one of the unread shards:
// within its index range and, for a part of a split store's writer, one of
// that writer's indices.
func inUnread(i int64, unread []ShardEntry) bool {
	for _, s := range unread {
		if i < s.FirstImageIndex || i > s.LastImageIndex {
			continue
		}
		if sub := partName.FindStringSubmatch(s.File); sub != nil && sub[1] != "" {
			if spec, _, err := partOf(sub); err == nil && i%int64(spec.Count) != int64(spec.Index) {
				continue
			}
		}
		return true
	}
	return false
}

// openForVerify is OpenReader without the size checks, which Verify reports
// per shard instead of failing at the first.
func openForVerify(path string) (*Reader, error) {
	manPath, err := ManifestPath(path)
	if err != nil {
		return nil, err
	}
	man, err := ReadManifest(manPath)
	if err != nil {
		return nil, err
	}
	r := &Reader{Dir: filepath.Dir(manPath), Manifest: man, Meta: man.Meta(), mem: memory.DefaultAllocator}
	if r.Schema, err = schema.NewSchema(r.Meta); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", manPath, err)
	}
	return r, nil
}

// checkFile checks that shard file path is on disk with the size and sha256
// its manifest entry s gives.
func checkFile(path string, s ShardEntry) error {
	if err := checkSize(path, s); err != nil {
		return err
	}
	sum, err := filehash.SHA256(path)
	if err != nil {
		return fmt.Errorf("shard %s: %w", path, err)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("shard %s: %w: sha256 %s, manifest says %s", path, ErrChecksum, sum, s.SHA256)
	}
	return nil
}

// checkShards checks every shard r's manifest lists as Verify does (file,
// then content against the manifest and against the shards v has seen) and
// stops at the first problem. A writer that resumes a store and Merge,
// which extend or publish a store, use it: what they build on must be what
// Verify would pass.
func checkShards(ctx context.Context, r *Reader, v *verifier) error {
	for i, s := range r.Manifest.Shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkFile(r.ShardPath(i), s); err != nil {
			return err
		}
		if err := v.shard(ctx, r, i); err != nil {
			return err
		}
	}
	return nil
}

// verifier checks the content of shards one after another, remembering what
// it has seen so that no image is stored twice across them.
type verifier struct {
	views  int
	images int64            // the dataset's image count; 0: unknown
	seen   IndexSet         // image indices in shards so far
	ids    map[string]int64 // image_id → image_index
}

func newVerifier(md schema.Metadata) *verifier {
	return &verifier{views: md.Views.Count, images: md.Dataset.ImageCount, ids: map[string]int64{}}
}

func (v *verifier) shard(ctx context.Context, r *Reader, i int) error {
	s := r.Manifest.Shards[i]
	p := r.ShardPath(i)
	var (
		rows        int64
		images      int64
		lastIdx     int64 = -1
		lastView    int32 = -1
		first, last int64 = -1, -1
		mod, modN   int64
		split       bool
		problem     error
	)
	fail := func(format string, a ...any) error {
		if problem == nil {
			problem = fmt.Errorf("shard %s: %w: %s", p, ErrContent, fmt.Sprintf(format, a...))
		}
		return problem
	}
	if sub := partName.FindStringSubmatch(s.File); sub != nil && sub[1] != "" {
		spec, _, err := partOf(sub)
		if err != nil {
			return fail("file name: %v", err)
		}
		mod, modN, split = int64(spec.Index), int64(spec.Count), true
	}
	err := r.ScanRows(ctx, i, []string{schema.ColImageID, schema.ColImageIndex, schema.ColView, schema.ColTeacherHard}, func(_ int, row *StoredRow) error {
		ix, vw, id, hard := row.ImageIndex, row.View, row.ImageID, row.TeacherHard
		if first < 0 {
			first = ix
		}
		last = ix
		switch {
		case ix < lastIdx || (ix == lastIdx && vw <= lastView):
			return fail("row %d: image %d view %d after image %d view %d: %v", rows, ix, vw, lastIdx, lastView, ErrOrder)
		case ix != lastIdx && lastIdx >= 0 && lastView != int32(v.views-1):
			return fail("image %d has views 0..%d, store has %d views", lastIdx, lastView, v.views)
		case ix != lastIdx && vw != 0, ix == lastIdx && vw != lastView+1:
			return fail("image %d: view %d follows view %d (duplicate or missing view)", ix, vw, lastView)
		case hard < 0 || int(hard) >= r.Meta.NumClasses:
			return fail("image %d view %d: teacher_hard %d outside 0..%d", ix, vw, hard, r.Meta.NumClasses-1)
		// The index is checked before seen.Add, which grows to hold it.
		case ix < 0:
			return fail("image index %d is negative", ix)
		case v.images > 0 && ix >= v.images:
			return fail("image index %d, dataset has %d images", ix, v.images)
		case split && ix%modN != mod:
			if problem == nil {
				problem = fmt.Errorf("shard %s: %w: %w: image %d in a part of writer %d-of-%d", p, ErrContent, ErrNotMyShard, ix, mod, modN)
			}
			return problem
		}
		if ix != lastIdx {
			if !utf8.ValidString(id) { // DuckDB refuses a shard whose utf8 column holds other bytes
				return fail("row %d: image %d: image_id %q is not valid UTF-8", rows, ix, id)
			}
			if v.seen.Contains(ix) {
				return fail("image %d (%s) is also in an earlier shard", ix, id)
			}
			if prev, dup := v.ids[id]; dup {
				return fail("image_id %s is image %d here and image %d elsewhere", id, ix, prev)
			}
			// A copy: id points into the record's buffer, which goes
			// back to the allocator when fn returns.
			v.ids[strings.Clone(id)] = ix
			v.seen.Add(ix)
			images++
		} else if v.ids[id] != ix {
			return fail("image %d: image_id changes within the image to %s", ix, id)
		}
		lastIdx, lastView = ix, vw
		rows++
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case lastIdx >= 0 && lastView != int32(v.views-1):
		return fail("image %d has views 0..%d, store has %d views", lastIdx, lastView, v.views)
	case rows != s.Rows || images != s.Images:
		return fail("%d rows of %d images, manifest says %d of %d", rows, images, s.Rows, s.Images)
	case first != s.FirstImageIndex || last != s.LastImageIndex:
		return fail("image indices %d..%d, manifest says %d..%d", first, last, s.FirstImageIndex, s.LastImageIndex)
	}
	return nil
}
