// Package store writes and reads deitkd label stores: a folder of Parquet (or
// Arrow IPC) shards holding one row per (image, view) in the schema of
// package schema, a manifest.json listing the finished shards, and a failure
// log in failures/.
//
// Writing: OpenWriter creates a store or resumes one with the same
// configuration (refusing a different one and naming the key) whose
// finished shards pass Verify's checks (refusing a damaged one, and a
// folder of parts without their manifest, and naming the file). Rows go in
// through Writer.Write in (image_index, view) order with raw logits; the
// writer derives teacher_hard, and in mode topk the top-k classes and
// logsumexp. A float16 store rounds the logits it stores to nearest, ties to
// even (as numpy's astype(np.float16)), and refuses a row with one that
// would round to ±Inf (|x| ≥ 65520). Each shard is written under a temporary name that does not end
// in .parquet, fsynced, renamed, and only then listed in the manifest, which
// is itself replaced atomically, so a killed writer loses at most the shard
// it was filling and a glob over the folder never sees a partial file. An
// open Writer holds a flock(2) on .lock in the folder (.lock-i-of-n for writer
// i of a split store), as Merge does while it runs, so a second writer of the
// same store is refused with ErrLocked naming the holder's pid; the kernel
// drops the lock of a killed process. Readers take no lock.
//
// Reading: OpenReader checks the manifest and the presence of every shard;
// Scan streams Arrow records (optionally a column subset), ScanRows decoded
// rows (StoredRow); LoadTargets builds an in-memory (image_id, view) → Target
// index for a trainer in one scan, handing each row to the trainer's join on
// the way; Dense turns a Target into probabilities at any temperature.
// Verify, Merge, Inspect and Export back the labels command.
//
// Columns by name: every column is read and written through its entry in
// columns (columns.go), the one row codec of the writer, ScanRows (and so
// LoadTargets, Verify, Inspect, Export and the callers outside), found by
// name, never by position. Adding a column is an entry there, a field of Row
// and of StoredRow, and its name and type in schema.NewSchema; a column of a
// later schema version says so (column.version), so that a store of an
// earlier one keeps its columns, byte for byte. Schema version 2's replay
// columns (an augmented store: randaugment, erase_box, erase_seed, mix_index,
// mix_view, mix_lambda, mix_box) are nullable: Row.Augment and Row.Mix in,
// StoredRow.Augment and StoredRow.Mix out.
//
// Ownership: the files of a store. This package must not import ONNX,
// image decoding or the student; of deitkd it imports schema, dataset for
// the replay parameters' types alone (dataset.Augment, dataset.Mix,
// dataset.Box: plain values, no pixels), and the small helpers under
// internal/ (atomicfile, half).
// A Writer is not safe for concurrent use; a Reader and Targets are safe for
// concurrent reads once opened.
package store
