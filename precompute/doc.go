// Package precompute is deitkd's stage one: it runs an ONNX teacher over every view of every
// image of a dataset once and writes the logits into a label store.
//
// New resolves a run before any image is read — it opens the teacher (which refuses a model
// of the wrong form), the dataset, works out the preprocessing (flags over the model's
// deitkd.preprocess metadata over defaults), checks class names against the dataset's class
// folders, and opens the store (which refuses an existing store of another configuration,
// naming the key). Job.Run then streams the images through a pipeline built on
// errgroup.WithContext, in the manner of restic's archiver:
//
//	reader ─► decode workers (N) ─► order-restoring batcher ─► teacher ─► store writer
//
// The reader, the workers and the batcher are one ordered pool (internal/ordered, the helper
// dataset.Feed and traindata's batches run on too): the reader yields the indices still to do
// (skipping images the store already has and those another --shard owns) in chunks of
// consecutive images, at most a window of them between reader and batcher; the workers load
// and decode each image once and render every view of it into one pooled []float32; the
// batcher receives the chunks back in index order and copies their images into the next
// teacher batch, so at most Window images are in flight however large the dataset; the
// teacher stage runs the batch; the writer appends rows in
// (image_index, view) order, logs per-image failures, and reports progress. Every channel is bounded, every send selects on ctx.Done(),
// and each producer closes its channel. On cancellation nothing is left half-way: the writer
// only ever writes whole images, and Run closes the store, so every finished image stays and a
// rerun of the same command resumes after it.
//
// Per-image failures (unreadable, truncated, empty, not an image, absurd dimensions) all pass
// through one function, Job.imageFailed, which logs them to the store's failure log and skips
// them, or, with OnError "fail", ends the run naming the file.
//
// Feed (precompute --teacher-off) runs the same pipeline with the teacher stage taken out and a
// sink that counts in place of the writer, so it measures what labelling feeds a teacher.
//
// With Options.ViewsFrom the views are not drawn but read from an existing store's rows (crop
// box, flip), so another teacher or input size labels exactly the same pixels of each image.
//
// precompute imports dataset, teacher, schema and store; nothing imports it but cmd/precompute.
package precompute
