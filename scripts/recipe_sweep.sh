#!/usr/bin/env bash
# How the default recipe's learning rate was chosen, as a script rather than a test that cannot
# fail: the bundled RegNetY teacher labels a Fashion-MNIST subset once, then fm-tiny trains at
# each learning rate with --distill none (labels only, as the sweep always did) and the real
# pipeline (train's views, not a hand-rolled loop), and each run's closing table is printed.
#
# Environment: FASHION_MNIST (/usr/share/datasets/fashion-mnist: the four .gz IDX files),
# SWEEP_TRAIN (10000 training images), SWEEP_TEST (10000 test images), SWEEP_EPOCHS (5),
# SWEEP_LRS ("1e-3 2e-3"), SWEEP_DISTILL (none), OUT (a temporary folder), GO (go). train's --limit
# applies to both sources: the eval set is the first min(SWEEP_TRAIN, SWEEP_TEST) test images.
set -euo pipefail

FM=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
NTRAIN=${SWEEP_TRAIN:-10000}
NTEST=${SWEEP_TEST:-10000}
EPOCHS=${SWEEP_EPOCHS:-5}
LRS=${SWEEP_LRS:-1e-3 2e-3}
DISTILL=${SWEEP_DISTILL:-none}
GO=${GO:-go}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
BIN=$OUT/bin
mkdir -p "$BIN"
(cd "$ROOT" && "$GO" build -o "$BIN/precompute" ./cmd/precompute && "$GO" build -o "$BIN/train" ./cmd/train)
TEACHER=$ROOT/testdata/teacher/regnety_fmnist.onnx
[ -d "$OUT/labels-train" ] || "$BIN/precompute" --model "$TEACHER" --data "idx:$FM/train" --limit "$NTRAIN" --out "$OUT/labels-train"
[ -d "$OUT/labels-test" ] || "$BIN/precompute" --model "$TEACHER" --data "idx:$FM/t10k" --limit "$NTEST" --out "$OUT/labels-test"
for lr in $LRS; do
  echo "== lr $lr, distill $DISTILL, $EPOCHS epochs on $NTRAIN images (test: $NTEST)"
  "$BIN/train" --labels "$OUT/labels-train" --data "idx:$FM/train" --eval-labels "$OUT/labels-test" \
    --eval-data "idx:$FM/t10k" --limit "$NTRAIN" --epochs "$EPOCHS" --lr "$lr" --distill "$DISTILL" \
    --out "$OUT/run-lr$lr" --resume 2>/dev/null
done
