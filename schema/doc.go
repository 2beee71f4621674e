// Package schema is deitkd's label-file contract as code: the Arrow schema of
// schema version 1 for both store modes (full logits or top-k) and of version 2
// (version 1's columns and the nullable replay columns of an augmented store,
// whose settings deitkd.augment records), the typed
// metadata stored under the "deitkd." keys of the schema metadata (and
// mirrored in a store's manifest.json), and the checks a run makes before it
// reads or extends a store: Validate for a file's schema, Diff for resume.
//
// The preprocessing recorded under deitkd.preprocess is dataset.Config, the
// one preprocessing type, imported from the package below this one: the same
// JSON is read from a teacher's or an exported student's ONNX metadata by
// ModelMetadata. Diff walks the metadata with internal/fielddiff, the helper
// a checkpoint's architecture check and a resume's settings check share.
//
// Ownership: this package owns column names, column types, metadata keys and
// their JSON encodings. It knows nothing of files, shards, ONNX or training,
// and imports no deitkd package but dataset (for dataset.Config and
// dataset.AugmentConfig alone) and
// internal/fielddiff.
package schema
