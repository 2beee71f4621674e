// Package schema is deitkd's label-file contract as code: the Arrow schema of
// schema version 1 for both store modes (full logits or top-k), the typed
// metadata stored under the "deitkd." keys of the schema metadata (and
// mirrored in a store's manifest.json), and the checks a run makes before it
// reads or extends a store: Validate for a file's schema, Diff for resume.
//
// Ownership: this package owns column names, column types, metadata keys and
// their JSON encodings. It knows nothing of files, shards, ONNX or training,
// and must not import any other deitkd package.
package schema
