package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/deitkd/deitkd/internal/atomicfile"
	"github.com/deitkd/deitkd/schema"
)

// ManifestFormat is the value of a manifest's "format" key.
const ManifestFormat = "deitkd-labels"

// Format is the file format of a store's shards.
type Format string

const (
	FormatParquet Format = "parquet" // the default: zstd-compressed, readable by any Parquet tool
	FormatArrow   Format = "arrow"   // Arrow IPC file format, uncompressed, for zero-copy readers
)

func (f Format) ext() string { return "." + string(f) }

// ShardSpec names one of Count writers that split a store by image index:
// writer Index takes every image whose index ≡ Index (mod Count). Modulo
// rather than contiguous ranges so that every writer sees the same mix of
// classes and image sizes and the writers finish together. Count 0 or 1
// means a single writer.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

func (s ShardSpec) split() bool { return s.Count > 1 }

func (s ShardSpec) String() string { return fmt.Sprintf("%d-of-%d", s.Index, s.Count) }

// ShardEntry describes one finished shard file.
type ShardEntry struct {
	File            string `json:"file"` // base name inside the store folder
	Rows            int64  `json:"rows"`
	Images          int64  `json:"images"`
	Bytes           int64  `json:"bytes"`
	SHA256          string `json:"sha256"`
	FirstImageIndex int64  `json:"first_image_index"`
	LastImageIndex  int64  `json:"last_image_index"`
}

// FailureEntry describes a failure log file.
type FailureEntry struct {
	File   string `json:"file"` // relative to the store folder, '/' separated
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Manifest is the content of manifest.json (or manifest.i-of-n.json for one
// writer of a split store).
type Manifest struct {
	Format        string     `json:"format"`
	SchemaVersion int        `json:"schema_version"`
	FileFormat    Format     `json:"file_format"`
	Shard         *ShardSpec `json:"shard,omitempty"` // set in a per-writer manifest
	// Limit is the scope the store was written for: the images with index <
	// Limit (precompute --limit); 0 or absent: the whole dataset. A writer of
	// a split store is responsible for its own indices below it.
	Limit    int64                      `json:"limit,omitempty"`
	Metadata map[string]json.RawMessage `json:"metadata"` // the schema metadata, key → JSON value
	Rows     int64                      `json:"rows"`
	Images   int64                      `json:"images"`
	Shards   []ShardEntry               `json:"shards"`
	Failures []FailureEntry             `json:"failures,omitempty"`

	meta schema.Metadata // decoded Metadata
}

// Meta returns the decoded metadata.
func (m *Manifest) Meta() schema.Metadata { return m.meta }

func newManifest(md schema.Metadata, f Format, spec ShardSpec) (*Manifest, error) {
	mm, err := md.EncodeMap()
	if err != nil {
		return nil, err
	}
	m := &Manifest{Format: ManifestFormat, SchemaVersion: md.SchemaVersion, FileFormat: f, Metadata: mm, Shards: []ShardEntry{}, meta: md}
	if spec.split() {
		s := spec
		m.Shard = &s
	}
	return m, nil
}

var (
	partName    = regexp.MustCompile(`^part-(?:(\d+)-of-(\d+)-)?(\d{5,})\.(parquet|arrow)$`)
	failureName = regexp.MustCompile(`^failures/failures(?:\.\d+-of-\d+)?\.parquet$`)
	hexSHA256   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseManifest decodes and checks a manifest: known keys only, supported
// schema version, metadata that decodes, shard names of the store's own
// pattern (no paths), distinct files, and counts that add up.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrManifest)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrManifest, m.Format, ManifestFormat)
	}
	if m.SchemaVersion < schema.VersionPlain || m.SchemaVersion > schema.Version {
		return nil, fmt.Errorf("%w: schema_version is %d, this build reads %d to %d", schema.ErrVersion, m.SchemaVersion, schema.VersionPlain, schema.Version)
	}
	if m.FileFormat != FormatParquet && m.FileFormat != FormatArrow {
		return nil, fmt.Errorf("%w: file_format %q", ErrManifest, m.FileFormat)
	}
	if m.Shard != nil && (m.Shard.Count < 2 || m.Shard.Index < 0 || m.Shard.Index >= m.Shard.Count) {
		return nil, fmt.Errorf("%w: shard %d of %d", ErrManifest, m.Shard.Index, m.Shard.Count)
	}
	if m.Limit < 0 {
		return nil, fmt.Errorf("%w: limit %d, want ≥ 0 (0: the whole dataset)", ErrManifest, m.Limit)
	}
	md, err := schema.DecodeMap(m.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", ErrManifest, err)
	}
	m.meta = md
	if m.SchemaVersion != md.SchemaVersion {
		return nil, fmt.Errorf("%w: schema_version %d, its metadata's %s %d", ErrManifest, m.SchemaVersion, schema.KeySchemaVersion, md.SchemaVersion)
	}
	if m.Shards == nil {
		m.Shards = []ShardEntry{}
	}
	seen := map[string]bool{}
	var rows, images int64
	for i, s := range m.Shards {
		sub := partName.FindStringSubmatch(s.File)
		switch {
		case sub == nil:
			return nil, fmt.Errorf("%w: shard %d: file name %q is not part-NNNNN.%s", ErrManifest, i, s.File, m.FileFormat)
		case Format(sub[4]) != m.FileFormat:
			return nil, fmt.Errorf("%w: shard %s: not a %s file", ErrManifest, s.File, m.FileFormat)
		case seen[s.File]:
			return nil, fmt.Errorf("%w: shard %s listed twice", ErrManifest, s.File)
		case s.Rows < 1 || s.Images < 1 || s.Images > s.Rows || s.Bytes < 1:
			return nil, fmt.Errorf("%w: shard %s: rows %d, images %d, bytes %d", ErrManifest, s.File, s.Rows, s.Images, s.Bytes)
		case s.FirstImageIndex < 0 || s.LastImageIndex < s.FirstImageIndex || s.LastImageIndex-s.FirstImageIndex+1 < s.Images:
			return nil, fmt.Errorf("%w: shard %s: image index range %d..%d for %d images", ErrManifest, s.File, s.FirstImageIndex, s.LastImageIndex, s.Images)
		case m.Limit > 0 && s.LastImageIndex >= m.Limit:
			return nil, fmt.Errorf("%w: shard %s: image indices up to %d, beyond the store's limit %d", ErrManifest, s.File, s.LastImageIndex, m.Limit)
		case !hexSHA256.MatchString(s.SHA256):
			return nil, fmt.Errorf("%w: shard %s: sha256 %q is not 64 lower-case hex digits", ErrManifest, s.File, s.SHA256)
		}
		if _, _, err := partOf(sub); err != nil {
			return nil, fmt.Errorf("%w: shard %s: %v", ErrManifest, s.File, err)
		}
		if m.Shard != nil && (sub[1] != fmt.Sprint(m.Shard.Index) || sub[2] != fmt.Sprint(m.Shard.Count)) {
			return nil, fmt.Errorf("%w: shard %s does not belong to writer %s", ErrManifest, s.File, m.Shard)
		}
		seen[s.File] = true
		rows += s.Rows
		images += s.Images
	}
	if rows != m.Rows || images != m.Images {
		return nil, fmt.Errorf("%w: totals say %d rows, %d images; shards add up to %d, %d", ErrManifest, m.Rows, m.Images, rows, images)
	}
	for _, f := range m.Failures {
		if !failureName.MatchString(f.File) || !hexSHA256.MatchString(f.SHA256) || f.Rows < 0 || f.Bytes < 1 {
			return nil, fmt.Errorf("%w: failure log entry %q", ErrManifest, f.File)
		}
	}
	return &m, nil
}

// scopeEnd is the end of the image indices the store m is responsible for
// (those below it): its Limit if set and within the dataset, else the
// dataset's image count (0 when unknown and no limit is set).
func (m *Manifest) scopeEnd() int64 {
	n := m.meta.Dataset.ImageCount
	if m.Limit > 0 && (n == 0 || m.Limit < n) {
		return m.Limit
	}
	return n
}

// normLimit is the Limit a writer records for a run over images with index
// < limit of a dataset of n images (n 0: unknown): 0, the whole dataset, when
// the limit is 0 or reaches past the last image.
func normLimit(limit, n int64) int64 {
	if limit <= 0 || (n > 0 && limit >= n) {
		return 0
	}
	return limit
}

// widenLimit is the scope of a store recorded for limit a that a run with
// limit b resumes: the larger of the two, 0 (the whole dataset) above all.
// A rerun with a bigger --limit, or none, extends the store; one with a
// smaller --limit labels less but does not shrink what the store is for.
func widenLimit(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

// ReadManifest reads and parses a manifest file, naming it in errors.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// write replaces path with m atomically: temp file, fsync, rename, fsync dir.
func (m *Manifest) write(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriterManifest reads the manifest a writer of spec would resume from in dir; nil, nil when
// there is none yet.
func WriterManifest(dir string, spec ShardSpec) (*Manifest, error) {
	m, err := ReadManifest(filepath.Join(dir, manifestName(spec)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

// manifestName is the manifest file of a writer.
func manifestName(spec ShardSpec) string {
	if spec.split() {
		return "manifest." + spec.String() + ".json"
	}
	return "manifest.json"
}

// shardFileName is the name of part n of a writer.
func shardFileName(spec ShardSpec, n int, f Format) string {
	if spec.split() {
		return fmt.Sprintf("part-%s-%05d%s", spec, n, f.ext())
	}
	return fmt.Sprintf("part-%05d%s", n, f.ext())
}

func failureFileName(spec ShardSpec) string {
	if spec.split() {
		return "failures/failures." + spec.String() + ".parquet"
	}
	return "failures/failures.parquet"
}

// ownsPart reports whether base is a part file (finished or temporary) of the
// writer spec, and its number. A name of the pattern whose number cannot be
// read is an error wrapping ErrContent, naming the file.
func ownsPart(base string, spec ShardSpec, f Format) (int, bool, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(base, "."), ".tmp")
	sub := partName.FindStringSubmatch(name)
	if sub == nil || Format(sub[4]) != f {
		return 0, false, nil
	}
	if spec.split() != (sub[1] != "") {
		return 0, false, nil
	}
	if spec.split() && (sub[1] != fmt.Sprint(spec.Index) || sub[2] != fmt.Sprint(spec.Count)) {
		return 0, false, nil
	}
	_, n, err := partOf(sub)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w: %v", base, ErrContent, err)
	}
	return n, true, nil
}

// partOf parses the submatches of partName: the writer of a split store
// (zero for a single writer's part) and the part number. Decimal with
// leading zeros, so not fmt.Sscan, which reads a leading 0 as octal (00010 is
// 8, 00008 is 0) and so had a resumed writer reuse part numbers.
func partOf(sub []string) (ShardSpec, int, error) {
	var spec ShardSpec
	n, err := strconv.Atoi(sub[3])
	if err != nil {
		return spec, 0, fmt.Errorf("part number: %w", err)
	}
	if sub[1] == "" {
		return spec, n, nil
	}
	if spec.Index, err = strconv.Atoi(sub[1]); err == nil {
		spec.Count, err = strconv.Atoi(sub[2])
	}
	if err != nil {
		return ShardSpec{}, 0, fmt.Errorf("writer: %w", err)
	}
	if spec.Count < 2 || spec.Index >= spec.Count {
		return ShardSpec{}, 0, fmt.Errorf("writer %s is not one of a split store", spec)
	}
	return spec, n, nil
}
