package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/deitkd/deitkd/dataset"
	"github.com/deitkd/deitkd/internal/fielddiff"
)

// Metadata keys. Each value is JSON: a number for schema_version and
// num_classes, a string for created_by, an array for class_names, an object
// for the others.
const (
	KeySchemaVersion = "deitkd.schema_version"
	KeyTeacher       = "deitkd.teacher"
	KeyNumClasses    = "deitkd.num_classes"
	KeyClassNames    = "deitkd.class_names"
	KeyPreprocess    = "deitkd.preprocess"
	KeyViews         = "deitkd.views"
	KeyStore         = "deitkd.store"
	KeyDataset       = "deitkd.dataset"
	KeyCreatedBy     = "deitkd.created_by"
	// KeyClassMap is written only when the store has a class map (precompute --class-map):
	// an array of {"folder", "class"} objects, one per dataset class folder in folder order.
	KeyClassMap = "deitkd.class_map"
	// KeyViewsFrom is written only when the store's views were taken from another store
	// (precompute --views-from): an object {"path", "manifest_sha256"} naming that store.
	KeyViewsFrom = "deitkd.views_from"
	// KeyAugment is written only by a store whose views were augmented (precompute
	// --randaugment, --erase, --mixup, --cutmix), schema version 2: the dataset.AugmentConfig
	// each view's parameters were drawn from.
	KeyAugment = "deitkd.augment"
)

// Keys lists the metadata keys in the order Encode writes them and Diff
// compares them.
var Keys = []string{
	KeySchemaVersion, KeyTeacher, KeyNumClasses, KeyClassNames, KeyPreprocess,
	KeyViews, KeyStore, KeyDataset, KeyCreatedBy, KeyClassMap, KeyViewsFrom, KeyAugment,
}

// optionalKey reports whether key may be absent: it is written only when md holds a value for
// it, so that stores without one keep the metadata they had before the key existed.
func (md *Metadata) optionalKey(key string) (optional, empty bool) {
	switch key {
	case KeyClassMap:
		return true, md.ClassMap == nil
	case KeyViewsFrom:
		return true, md.ViewsFrom == nil
	case KeyAugment:
		return true, md.Augment == nil
	}
	return false, false
}

// ClassMapEntry says which teacher class a dataset class folder's images are labelled with.
type ClassMapEntry struct {
	Folder string `json:"folder"` // the class folder's name (escaped as dataset escapes ids)
	Class  int    `json:"class"`  // teacher class index, 0..num_classes-1
}

// ViewsFrom names the store whose rows (image, view, crop, flip) a store labels again with
// another teacher or at another input size (precompute --views-from): its folder and the
// sha256 of its manifest.json as it was read, which identifies its rows (the manifest lists
// every shard's sha256), as train records the stores a run trained on.
type ViewsFrom struct {
	Path           string `json:"path"`            // the source store's folder, absolute
	ManifestSHA256 string `json:"manifest_sha256"` // hex sha256 of its manifest.json
}

// Teacher identifies the ONNX model that produced the logits.
type Teacher struct {
	File       string  `json:"file"`        // base name of the .onnx file
	SHA256     string  `json:"sha256"`      // hex sha256 of the .onnx file
	InputName  string  `json:"input_name"`  // graph input fed the NCHW batch
	InputShape []int64 `json:"input_shape"` // as declared by the graph, -1 for dynamic
	OutputName string  `json:"output_name"` // graph output read as logits
}

// Views describes the views per image: view 0 is the eval view, views
// 1..Count-1 random resized crops drawn from Seed.
type Views struct {
	Count int        `json:"count"`
	Seed  uint64     `json:"seed"`
	Scale [2]float64 `json:"scale"`  // area fraction range of random crops
	Ratio [2]float64 `json:"ratio"`  // aspect ratio range of random crops
	FlipP float64    `json:"flip_p"` // probability of a horizontal flip
}

// StoreConfig says how logits are kept.
type StoreConfig struct {
	Mode  Mode  `json:"mode"`
	K     int   `json:"k"` // classes kept per row in mode topk; 0 in mode full
	DType DType `json:"dtype"`
}

// Dataset identifies the image list the labels belong to.
type Dataset struct {
	Name string `json:"name"`
	// Extensions are the file name endings a folder source was listed with (precompute
	// --extensions), in dataset.CanonicalExtensions' form: ["*"] for every file; absent (nil)
	// for torchvision's IMG_EXTENSIONS, the default, and for list and IDX sources. The trainer
	// lists the folder with them again.
	Extensions []string `json:"extensions,omitempty"`
	ImageCount int64    `json:"image_count"`
	IDHash     string   `json:"id_hash"` // hex sha256 over the ids in canonical order, each followed by "\n" (dataset.IDHash)
	// ContentHash is dataset.ContentHash of the images labelled: a hex sha256 over each file's
	// size and first and last KiB (IDX: the decoded pixels), so that the same ids with other
	// bytes are told apart. Absent in stores made before it was recorded: nothing to compare.
	ContentHash string `json:"content_hash,omitempty"`
}

// Metadata is the typed form of a label file's "deitkd." schema metadata.
type Metadata struct {
	SchemaVersion int            `json:"schema_version"`
	Teacher       Teacher        `json:"teacher"`
	NumClasses    int            `json:"num_classes"`
	ClassNames    []string       `json:"class_names"`
	Preprocess    dataset.Config `json:"preprocess"` // what was done to pixels before the teacher saw them, filled in
	Views         Views          `json:"views"`
	Store         StoreConfig    `json:"store"`
	Dataset       Dataset        `json:"dataset"`
	CreatedBy     string         `json:"created_by"` // tool and version; ignored by Diff
	// ClassMap maps each dataset class folder, in folder order, to the teacher class its
	// images are labelled with (precompute --class-map); nil, and its key absent, without one.
	ClassMap []ClassMapEntry `json:"class_map,omitempty"`
	// ViewsFrom names the store the views were taken from (precompute --views-from); nil,
	// and its key absent, when the views were drawn from Views' seed.
	ViewsFrom *ViewsFrom `json:"views_from,omitempty"`
	// Augment is what views 1..Count-1 got after their crop and flip (view 0, the eval view,
	// none), each view's parameters drawn from (Views.Seed, image, view) and stored in the
	// replay columns of schema version 2; nil, and its key absent, in a version-1 store.
	Augment *dataset.AugmentConfig `json:"augment,omitempty"`
}

// Check reports the first inconsistency within md, naming its key.
func (md Metadata) Check() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrMetadata, key, fmt.Sprintf(format, a...))
	}
	if md.SchemaVersion < VersionPlain || md.SchemaVersion > Version {
		return fmt.Errorf("%w: %s is %d, this build reads %d to %d", ErrVersion, KeySchemaVersion, md.SchemaVersion, VersionPlain, Version)
	}
	if want := VersionFor(md.Augment != nil); md.SchemaVersion != want {
		return bad(KeySchemaVersion, "%d with%s %s, want %d", md.SchemaVersion, map[bool]string{true: "", false: "out"}[md.Augment != nil], KeyAugment, want)
	}
	if a := md.Augment; a != nil {
		if !a.On() {
			return bad(KeyAugment, "no augmentation on; a store without one has no such key")
		}
		if err := a.Check(); err != nil {
			return bad(KeyAugment, "%v", err)
		}
		if md.Views.Count < 2 {
			return bad(KeyViews+".count", "%d with %s: augmentations apply to views 1..count-1, want ≥ 2", md.Views.Count, KeyAugment)
		}
	}
	if md.NumClasses < 1 {
		return bad(KeyNumClasses, "%d, want ≥ 1", md.NumClasses)
	}
	if md.ClassNames != nil && len(md.ClassNames) != md.NumClasses {
		return bad(KeyClassNames, "%d names for %d classes", len(md.ClassNames), md.NumClasses)
	}
	for c, name := range md.ClassNames { // JSON holds UTF-8 only: json.Marshal would write U+FFFD
		if !utf8.ValidString(name) {
			return bad(KeyClassNames, "class %d: name %q is not valid UTF-8", c, name)
		}
	}
	if md.ClassMap != nil && len(md.ClassMap) == 0 {
		return bad(KeyClassMap, "empty; a store without a class map has no %s", KeyClassMap)
	}
	folders := make(map[string]int, len(md.ClassMap))
	for i, e := range md.ClassMap {
		if !utf8.ValidString(e.Folder) {
			return bad(KeyClassMap, "entry %d: folder %q is not valid UTF-8", i, e.Folder)
		}
		if e.Folder == "" {
			return bad(KeyClassMap, "entry %d: empty folder name", i)
		}
		if j, dup := folders[e.Folder]; dup {
			return bad(KeyClassMap, "folder %q is entries %d and %d", e.Folder, j, i)
		}
		folders[e.Folder] = i
		if e.Class < 0 || e.Class >= md.NumClasses {
			return bad(KeyClassMap, "folder %q: class %d outside 0..%d", e.Folder, e.Class, md.NumClasses-1)
		}
	}
	if md.Views.Count < 1 {
		return bad(KeyViews+".count", "%d, want ≥ 1", md.Views.Count)
	}
	if v := md.ViewsFrom; v != nil {
		if v.Path == "" {
			return bad(KeyViewsFrom+".path", "empty")
		}
		if len(v.ManifestSHA256) != 64 || strings.Trim(v.ManifestSHA256, "0123456789abcdef") != "" {
			return bad(KeyViewsFrom+".manifest_sha256", "%q is not a hex sha256", v.ManifestSHA256)
		}
	}
	if md.Dataset.ImageCount < 0 {
		return bad(KeyDataset+".image_count", "%d, want ≥ 0", md.Dataset.ImageCount)
	}
	switch md.Store.Mode {
	case ModeFull:
		if md.Store.K != 0 {
			return bad(KeyStore+".k", "%d in mode full, want 0", md.Store.K)
		}
	case ModeTopK:
		if md.Store.K < 1 || md.Store.K > md.NumClasses {
			return bad(KeyStore+".k", "%d, want 1..%d", md.Store.K, md.NumClasses)
		}
	default:
		return bad(KeyStore+".mode", "%q, want full or topk", string(md.Store.Mode))
	}
	if _, err := md.Store.DType.ArrowType(); err != nil {
		return err
	}
	return nil
}

// Width is the number of logits a row stores: K in mode topk, NumClasses in
// mode full.
func (md Metadata) Width() int {
	if md.Store.Mode == ModeTopK {
		return md.Store.K
	}
	return md.NumClasses
}

// values returns the fields of md that belong to each key, in Keys order.
func (md *Metadata) values() []any {
	return []any{&md.SchemaVersion, &md.Teacher, &md.NumClasses, &md.ClassNames,
		&md.Preprocess, &md.Views, &md.Store, &md.Dataset, &md.CreatedBy, &md.ClassMap, &md.ViewsFrom, &md.Augment}
}

// Encode returns md as Arrow schema metadata, one JSON value per key.
func (md Metadata) Encode() (arrow.Metadata, error) {
	keys := make([]string, 0, len(Keys))
	vals := make([]string, 0, len(Keys))
	for i, v := range md.values() {
		if _, empty := md.optionalKey(Keys[i]); empty {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return arrow.Metadata{}, fmt.Errorf("%w: encode %s: %v", ErrMetadata, Keys[i], err)
		}
		keys, vals = append(keys, Keys[i]), append(vals, string(b))
	}
	return arrow.NewMetadata(keys, vals), nil
}

// EncodeMap returns md as a map from key to JSON value, the form mirrored in
// manifest.json.
func (md Metadata) EncodeMap() (map[string]json.RawMessage, error) {
	m, err := md.Encode()
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, m.Len())
	for i, k := range m.Keys() {
		out[k] = json.RawMessage(m.Values()[i])
	}
	return out, nil
}

// DecodeMap is the inverse of EncodeMap.
func DecodeMap(m map[string]json.RawMessage) (Metadata, error) {
	keys := make([]string, 0, len(m))
	vals := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k)
		vals = append(vals, string(v))
	}
	return Decode(keys, vals)
}

// Decode parses metadata from parallel key and value lists. Keys without the
// "deitkd." prefix are ignored (Arrow and Parquet add their own); every
// deitkd key must be present exactly once and known, values must be strict
// JSON of the documented shape, and the result must pass Check. The schema
// version is read first so that a file of another version fails with
// ErrVersion, not with a confusing error about a later key.
func Decode(keys, values []string) (Metadata, error) {
	if len(keys) != len(values) {
		return Metadata{}, fmt.Errorf("%w: %d keys, %d values", ErrMetadata, len(keys), len(values))
	}
	byKey := make(map[string]string, len(Keys))
	for i, k := range keys {
		if !strings.HasPrefix(k, "deitkd.") {
			continue
		}
		if _, dup := byKey[k]; dup {
			return Metadata{}, fmt.Errorf("%w: %s: duplicate key", ErrMetadata, k)
		}
		byKey[k] = values[i]
	}
	var md Metadata
	raw, ok := byKey[KeySchemaVersion]
	if !ok {
		return Metadata{}, fmt.Errorf("%w: %s: missing (not a deitkd label file?)", ErrMetadata, KeySchemaVersion)
	}
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return Metadata{}, fmt.Errorf("%w: %s: %q is not an integer", ErrMetadata, KeySchemaVersion, raw)
	}
	if v < VersionPlain || v > Version {
		return Metadata{}, fmt.Errorf("%w: %s is %d, this build reads %d to %d", ErrVersion, KeySchemaVersion, v, VersionPlain, Version)
	}
	known := make(map[string]bool, len(Keys))
	for i, dst := range md.values() {
		key := Keys[i]
		known[key] = true
		raw, ok := byKey[key]
		if !ok {
			if optional, _ := md.optionalKey(key); optional {
				continue
			}
			return Metadata{}, fmt.Errorf("%w: %s: missing", ErrMetadata, key)
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return Metadata{}, fmt.Errorf("%w: %s: %v", ErrMetadata, key, err)
		}
		if dec.More() {
			return Metadata{}, fmt.Errorf("%w: %s: trailing data after the JSON value", ErrMetadata, key)
		}
		if _, empty := md.optionalKey(key); empty {
			return Metadata{}, fmt.Errorf("%w: %s: %s; a store without one has no such key", ErrMetadata, key, strings.TrimSpace(raw))
		}
	}
	for k := range byKey {
		if !known[k] {
			return Metadata{}, fmt.Errorf("%w: %s: unknown key", ErrMetadata, k)
		}
	}
	if err := md.Check(); err != nil {
		return Metadata{}, err
	}
	return md, nil
}

// Diff compares the metadata of an existing store with the metadata a run
// wants and returns nil when they agree, or an error wrapping ErrMismatch
// that names the first differing key, down to the field, e.g.
// "deitkd.preprocess.crop: store has 224, run wants 256". created_by is not
// compared: a newer build may extend a store an older one began.
func Diff(store, run Metadata) error {
	sv, rv := store.values(), run.values()
	for i, key := range Keys {
		if key == KeyCreatedBy {
			continue
		}
		if key == KeyClassMap {
			if d := diffClassMap(store.ClassMap, run.ClassMap); d != "" {
				return fmt.Errorf("%w: %s", ErrMismatch, d)
			}
			continue
		}
		a, b := reflect.ValueOf(sv[i]).Elem().Interface(), reflect.ValueOf(rv[i]).Elem().Interface()
		if key == KeyAugment && store.Augment != nil && run.Augment != nil {
			a, b = *store.Augment, *run.Augment // named down to the setting
		}
		if f, ok := fielddiff.First(key, a, b); ok {
			return fmt.Errorf("%w: %s: store has %s, run wants %s", ErrMismatch, f.Path, fielddiff.Text(f.A), fielddiff.Text(f.B))
		}
	}
	return nil
}

// diffClassMap names the first folder two class maps disagree on rather than printing both
// maps whole (a thousand folders make a long line).
func diffClassMap(a, b []ClassMapEntry) string {
	count := func(m []ClassMapEntry) string {
		if m == nil {
			return "no class map"
		}
		return fmt.Sprintf("%d folders", len(m))
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%s[%d]: store has %s, run wants %s", KeyClassMap, i, fielddiff.Text(a[i]), fielddiff.Text(b[i]))
		}
	}
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return fmt.Sprintf("%s: store has %s, run wants %s", KeyClassMap, count(a), count(b))
	}
	return ""
}
