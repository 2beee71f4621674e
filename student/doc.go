// Package student owns the DeiT student of stage two: the model (patch
// embedding, class and distillation tokens, pre-norm transformer blocks, two
// heads), its custom gorgonia ops with hand-written backward passes, the
// distillation losses, AdamW, global-norm clipping, the learning-rate
// schedule, the training and evaluation steps, checkpoints and the token
// analysis of the DeiT paper. Init starts a model from another's weights
// (timm-named tensors) at another image size or class count, resampling the
// positional embedding as timm does (resample.go).
// analysis of the DeiT paper. The training's settings are TrainConfig (a recipe,
// NewRecipe, filled in once; drop-path is part of it) and the named modes of modes.go
// (Distill, KLNorm, Fuse, Recipe), types that refuse a bad word where it is parsed.
//
// It works on batches already in memory: images as NCHW float32, labels and
// teacher targets as plain slices. It must not import ONNX Runtime, the label
// store or anything that reads files of the store; package train does the wiring.
// It imports dataset for one type only: dataset.Config, the eval transform a
// checkpoint records next to the class names (Model.SetPreprocess) so that an
// export needs no label store.
//
// What runs where: the model is a gorgonia expression graph (one node per
// layer: patch embedding, LayerNorm, linear, attention, GELU, residual with
// drop-path, head, loss) and gorgonia's symbolic differentiation builds the
// backward graph from each op's SymDiff; one TapeMachine per batch size is
// compiled once and reused every step. Its values share buffers where their
// lifetimes do not overlap (plan.go): a DeiT-tiny-shaped training graph at batch
// 64 holds 274 MiB of values instead of 821. Every op's forward and backward is our
// own kernel (kernels.go) on float32 buffers, with the matrix products
// through BLAS sgemm: OpenBLAS through cgo by default, gonum's pure-Go BLAS
// with -tags purego. Gorgonia's own AdamW is not used (it does not decay
// weights correctly in v0.9.18); ours is in optim.go.
//
// A Model or Trainer is not safe for concurrent use.
package student
