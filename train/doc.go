// Package train is stage two's job, precompute's peer: New resolves a run before any step —
// the recipe filled in once with the options over it, the architecture, the training and eval
// sets opened and checked against each other and the student, the settings a resume must
// repeat — and Job.Run trains it: epochs of traindata batches through a student.Trainer, an
// evaluation after every epoch, OUT/metrics.jsonl, a checkpoint per epoch, exact resume, a stop
// on a non-finite loss, the closing table and the exports. Analyze is the token analysis of a
// checkpoint over an eval set.
//
// It sits between traindata (the data feeder, which must not know the student) and student
// (which must not read the store). It knows no flag: cmd/train parses flags into Options, and
// words in flags the ways out of a FolderError (a run refused for what Options.Out holds).
//
// Files in Options.Out:
//
//	run.json          the run's settings (data settings, the model config, the recipe and the
//	                  fusion), which a resume must match field for field, and where its inputs
//	                  were (the label stores' paths: recorded, not compared, so a moved store
//	                  resumes; the stores themselves are compared by identity); of a run started
//	                  from another student's weights (Options.Init, init.go), the file's sha256
//	                  (compared) and path (not compared)
//	metrics.jsonl     one JSON object a line: {"kind":"train",...} per step, {"kind":"eval",...} per epoch
//	checkpoint.ckpt   the training state after the last finished epoch (student's Trainer.Save,
//	                  atomic), with the student's eval preprocessing and class names
//	                  (traindata.ExportPreprocess); LoadModel reads it for evaluation and export
//	student.onnx, student.safetensors   the exports of Options.Export, written after training
//
// A run.json written by an older train still resumes: its recipe's sentinels for an explicit
// zero are read as 0, and label stores recorded by path only are compared by path.
package train
