// Package traindata feeds stage two: it joins a label store (package store) to the images of a
// source (package dataset) and streams training and evaluation batches — images as NCHW float32
// at the student's resolution, ground-truth labels, the teacher's hard labels and its dense
// probabilities at a temperature.
//
// Open checks that the store fits the source and the student before anything is read: the
// image count and id hash of the source, the classes (count, and names where both have them),
// and the student's preprocessing (channels, mean, std; the resolution may differ, since every
// view is re-rendered at the student's size with the store's interpolation). A misfit is
// refused with ErrMismatch naming the metadata field. The store is then read in one scan
// (store.LoadTargets, which keeps the teacher targets and hands every row to the join that
// groups rows by image and checks each against the source), decoded by store's row codec: this
// package reads no Arrow.
//
// Views. A store with several views per image (precompute --views V) is replayed exactly: each
// epoch draws, per image, one of its stored rows (seeded by seed, epoch and image index) and
// renders that row's crop box and flip with dataset.Render, so the student sees the pixels the
// teacher labelled, and that row's teacher target goes with them. With ViewsPerImage n, n
// distinct stored views of each image go into the same epoch, next to each other. A store with
// one view per image is the "fixed teacher" set-up: each epoch renders a fresh
// RandomResizedCrop box and flip (dataset.RandomView with the store's scale, ratio and flip
// probability, seeded by seed and epoch) against the image's one teacher target. With
// RepeatedAug (DeiT's repeated augmentation) the ViewsPerImage views of each image stay next to
// each other but the epoch is cut to Len() rows, as timm's RASampler cuts it.
//
// Rows streams chosen stored rows as they are, without augmentation, with Batch.Pixels their
// 8-bit pictures: what the teacher saw (package show draws and writes them).
//
// Determinism: the batches of (seed, epoch) are a pure function of those two numbers, the store
// and the source, whatever the number of workers: the order is a seeded permutation, each
// image's views are drawn from dataset.RNG keyed by (seed, epoch, image index), and workers
// render into batches that internal/ordered hands out in order.
//
// Memory: decoded images are kept after their first use up to Options.CacheBytes (Fashion-MNIST's
// 60,000 28×28 images take 47 MB), so a dataset that fits is decoded once; teacher targets are
// held by store.Targets in their stored dtype.
//
// traindata imports dataset, store and schema; it knows nothing of the student, ONNX or flags.
// Package train drives a student.Trainer over these batches. ExportPreprocess is the one place a
// trained student's export preprocessing is built (train records it, export --labels checks it).
// A Set is safe for concurrent use once opened; one Set may stream several epochs at once.
package traindata
