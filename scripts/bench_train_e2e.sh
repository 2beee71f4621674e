#!/usr/bin/env bash
# End-to-end training speed, data included (issue 17): deitkd's `train` (its own epoch record,
# train_img_s: rendering the views from the decoded images, batching, the steps) against the
# plain PyTorch loop of scripts/parity_torch.py (the images pre-normalised in one tensor, no
# data pipeline at all), the same fm-tiny model and settings: 1 epoch over the first N
# Fashion-MNIST training images, labels only, no augmentation, batch 128, 2 threads.
# Alternates ROUNDS rounds and prints each side's img/s and CPU-ms per image, and the ratios.
#
#   bash scripts/bench_train_e2e.sh            (N=20000, ROUNDS=2; FASHION_MNIST, OUT as make demo)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FM=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
N=${N:-20000}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-out/bench-train-e2e}
export GOFLAGS=${GOFLAGS:--mod=mod}
mkdir -p "$OUT"
go build -o "$OUT/bin/" ./cmd/precompute ./cmd/train
# A store without flips (the PyTorch loop flips nothing); its teacher is unused (--distill none).
"$OUT/bin/precompute" --model testdata/teacher/regnety_fmnist.onnx --data "idx:$FM/train" --limit "$N" \
  --flip-p 0 --out "$OUT/labels" >/dev/null
cpu() { awk '{print $2 + $3}' "$1"; } # user + system seconds from /usr/bin/time -f '%e %U %S'
for r in $(seq "$ROUNDS"); do
  rm -rf "$OUT/run"
  /usr/bin/time -f '%e %U %S' -o "$OUT/go.time" "$OUT/bin/train" --labels "$OUT/labels" --data "idx:$FM/train" \
    --limit "$N" --epochs 1 --distill none --aug-scale 1,1 --seed "$r" --out "$OUT/run" >/dev/null 2>&1
  go_ips=$(grep '"kind":"epoch"' "$OUT/run/metrics.jsonl" | sed 's/.*"train_img_s":\([0-9.]*\).*/\1/')
  go_cpu=$(cpu "$OUT/go.time")
  /usr/bin/time -f '%e %U %S' -o "$OUT/torch.time" /usr/bin/python3 scripts/parity_torch.py --data "$FM" \
    --limit "$N" --epochs 1 --seed "$r" --clip 1 --warmup 0.03 >"$OUT/torch.json"
  torch_s=$(sed 's/.*"train_s": \([0-9.]*\).*/\1/' "$OUT/torch.json")
  torch_cpu=$(cpu "$OUT/torch.time")
  awk -v n="$N" -v r="$r" -v gi="$go_ips" -v gc="$go_cpu" -v ts="$torch_s" -v tc="$torch_cpu" 'BEGIN {
    ti = n / ts
    printf "round %d  deitkd train %7.1f img/s %6.2f CPU-ms/img  PyTorch loop %7.1f img/s %6.2f CPU-ms/img  ratio %.2f (CPU %.2f)\n",
      r, gi, 1000 * gc / n, ti, 1000 * tc / n, gi / ti, tc / gc }'
done
echo "(deitkd's CPU time is the whole process: start, store checks and decoding included; PyTorch's train_s includes its final evaluation of 10,000 images)"
