// Package teacher runs an ONNX classifier — the distillation teacher — through ONNX Runtime.
//
// It owns loading the ONNX Runtime shared library (LoadLibrary: an explicit path, then
// DEITKD_ORT_LIB, then the `make setup` cache), choosing the execution provider (CPU, or CUDA with
// a one-warning fallback to CPU), discovering and checking the model's input and output, and
// batched runs (Model.Run) that pad the last batch of a fixed-batch model. The model's ONNX
// metadata is handed on as written (Info.Metadata); the preprocessing and class names it
// carries under deitkd's keys are read by schema.ModelMetadata, the same contract as a store's.
//
// Input is always an NCHW float32 tensor made by the caller; output is raw logits, N×K,
// row-major. Nothing here decodes images, writes files or trains.
//
// It must not import Arrow, the label store (store/, schema/), image handling (dataset/) or
// training (student/); the caller maps Info onto those.
//
// Concurrency: a Model's Run may be called from several goroutines at once. The ONNX Runtime
// environment is process-global: LoadLibrary may be called any number of times (the first
// success wins), and Shutdown releases it once every Model is closed.
package teacher
