#!/usr/bin/env bash
# make demo: the main job on the bundled default, end to end.
#   1. precompute: the bundled RegNetY teacher (testdata/teacher/regnety_fmnist.onnx) labels
#      Fashion-MNIST's 60,000 training and 10,000 test images into two label stores;
#   2. labels inspect: the teacher's accuracy as the store sees it;
#   3. train: a short fm-tiny DeiT student run with hard distillation from those labels, which
#      prints the class / distillation / fused accuracies, then exports the student. With one
#      stored view per image the trainer augments at train time; in a run this short train's
#      default is whole-image views with their flips (RandomResizedCrop's 0.08 floor costs ~18
#      points in 2 epochs; train says what it chose).
# Reruns resume: finished label stores are found complete and kept; a finished student run is
# kept too (delete OUT to start again).
#
# Environment: OUT (out/demo), FASHION_MNIST (folder with the four IDX files;
# /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist), DEMO_EPOCHS (3),
# DEMO_LIMIT (training images for the student run; 0, the default: all 60,000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-out/demo}
FM=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
EPOCHS=${DEMO_EPOCHS:-3}
LIMIT=${DEMO_LIMIT:-0}
TEACHER=testdata/teacher/regnety_fmnist.onnx
export GOFLAGS=${GOFLAGS:--mod=mod}

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -e "$FM/$f.gz" ] && [ ! -e "$FM/$f" ]; then
    echo "demo: Fashion-MNIST not found: $FM/$f[.gz] is missing." >&2
    echo "demo: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)," >&2
    echo "demo: or put the four IDX files of Fashion-MNIST in a folder and set FASHION_MNIST=DIR." >&2
    exit 1
  fi
done

echo "== building deitkd into bin/"
go build -o bin/ ./cmd/...

step() { printf '\n== %s\n' "$*"; }
step "precompute: teacher labels for the 60,000 training images -> $OUT/labels-train"
bin/precompute --model "$TEACHER" --data "idx:$FM/train" --out "$OUT/labels-train"
step "precompute: teacher labels for the 10,000 test images -> $OUT/labels-test"
bin/precompute --model "$TEACHER" --data "idx:$FM/t10k" --out "$OUT/labels-test"
step "labels inspect $OUT/labels-test"
bin/labels inspect "$OUT/labels-test"

step "train: fm-tiny DeiT student, hard distillation, $EPOCHS epochs on $( [ "$LIMIT" = 0 ] && echo all || echo "$LIMIT" ) training images -> $OUT/student"
args=(--labels "$OUT/labels-train" --data "idx:$FM/train" --eval-data "idx:$FM/t10k"
      --eval-labels "$OUT/labels-test" --preset fm-tiny --distill hard --epochs "$EPOCHS"
      --limit "$LIMIT" --out "$OUT/student" --export onnx,safetensors)
bin/train "${args[@]}" --resume

cat <<MSG

== done. Everything is under $OUT:
  $OUT/labels-train/, $OUT/labels-test/   label stores (manifest.json + part-*.parquet)
  $OUT/student/metrics.jsonl              training and per-epoch eval records
  $OUT/student/checkpoint.ckpt            the student (train --resume continues it)
  $OUT/student/student.onnx, .safetensors the exported student

Open the labels with any Arrow tool, e.g. DuckDB:
  SELECT view, count(*) AS rows, avg((teacher_hard = label)::int) AS teacher_top1
  FROM read_parquet('$OUT/labels-test/*.parquet') GROUP BY view;
MSG
