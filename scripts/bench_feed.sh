#!/usr/bin/env bash
# make bench-feed: deitkd's stage-one feeding capacity against a PyTorch DataLoader, measured in
# one command on the same files.
#
#   - Makes N ImageNet-like JPEGs (scripts/make_jpegs.py, about 500×375, quality 90, a few
#     progressive and grayscale) once, into $DEITKD_CACHE/bench/jpegs-N.
#   - Runs, alternating, ROUNDS times each: deitkd's pipeline (listing, reading, decoding,
#     Resize 256 / CenterCrop 224 / normalise, batches of 64 on all cores, no teacher) and
#     scripts/bench_feed_torch.py (ImageFolder + PIL + torchvision's eval transform, DataLoader
#     with workers = cores, batch 64), and prints img/s, CPU ms per image (getrusage: less
#     disturbed by other load than img/s) and the ratio, per round and the median.
#
# Environment: BENCH_FEED_N (2000), BENCH_FEED_ROUNDS (3), BENCH_FEED_DRAFT=1 (also time
# deitkd with --jpeg-draft, PIL's JPEG draft: different pixels), BENCH_FEED_NOISE (make_jpegs.py's
# --noise, 4: ~30 KB files; 25 gives ImageNet's ~110 KB, more entropy decoding, which both
# sides do with libjpeg-turbo), GO (go), PYTHON (/usr/bin/python3).
set -euo pipefail

N=${BENCH_FEED_N:-2000}
ROUNDS=${BENCH_FEED_ROUNDS:-3}
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
CACHE=${DEITKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deitkd}
NOISE=${BENCH_FEED_NOISE:-4}
DIR=$CACHE/bench/jpegs-$N
[ "$NOISE" = 4 ] || DIR=$DIR-noise$NOISE
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORES=$(nproc)
export GOFLAGS=${GOFLAGS:--mod=mod}

say() { printf 'bench-feed: %s\n' "$*" >&2; }

if [ ! -d "$DIR" ]; then
  say "making $N JPEGs in $DIR (once)"
  rm -rf "$DIR.tmp"
  mkdir -p "$(dirname "$DIR")"
  "$PYTHON" "$ROOT/scripts/make_jpegs.py" --n "$N" --noise "$NOISE" --out "$DIR.tmp"
  mv "$DIR.tmp" "$DIR"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$ROOT"
# precompute --teacher-off is the pipeline precompute runs, without the teacher; until a build
# has it, dataset.Feed (the same stages) through its benchmark.
if "$GO" build -o "$tmp/precompute" ./cmd/precompute && [[ $("$tmp/precompute" --help 2>&1) == *--teacher-off* ]]; then
  driver=precompute
else
  driver=dataset.Feed
  "$GO" test -c -o "$tmp/dataset.test" ./dataset
fi
say "deitkd driver: $driver; $CORES cores; files: $DIR"

# run_go [draft] prints "IMG_PER_S CPU_MS_PER_IMG".
run_go() {
  local draft=${1:-0} out
  if [ "$driver" = precompute ]; then
    local flags=()
    [ "$draft" = 1 ] && flags+=(--jpeg-draft)
    out=$("$tmp/precompute" --teacher-off --data "$DIR" --resize 256 --crop 224 \
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --batch 64 "${flags[@]}" 2>&1)
    echo "$out" | awk '/feed_img_per_s/ { for (i = 1; i < NF; i++) { if ($i == "feed_img_per_s") r = $(i+1); if ($i == "cpu_ms_per_img") c = $(i+1) } } END { if (r == "") exit 1; print r, c }' \
      || { echo "$out" >&2; return 1; }
  else
    out=$(cd dataset && DEITKD_FEED_DIR=$DIR DEITKD_FEED_DRAFT=$draft "$tmp/dataset.test" \
      -test.run '^$' -test.bench '^BenchmarkFeedFolder$' -test.benchtime 1x 2>&1)
    echo "$out" | awk '/^BenchmarkFeedFolder/ { for (i = 1; i < NF; i++) { if ($(i+1) == "img/s") r = $i; if ($(i+1) == "cpu-ms/img") c = $i } } END { if (r == "") exit 1; print r, c }' \
      || { echo "$out" >&2; return 1; }
  fi
}

run_torch() {
  local out
  out=$("$PYTHON" scripts/bench_feed_torch.py --data "$DIR" --resize 256 --crop 224 --batch 64 --workers "$CORES" 2>&1)
  echo "$out" | awk '/^torch_feed_img_per_s/ { print $2, $4 }' | grep . || { echo "$out" >&2; return 1; }
}

rows=()
for r in $(seq 1 "$ROUNDS"); do
  # Alternate who goes first, so neither always runs on a cache the other warmed.
  if [ $((r % 2)) = 1 ]; then g=$(run_go); t=$(run_torch); else t=$(run_torch); g=$(run_go); fi
  d="- -"
  [ "${BENCH_FEED_DRAFT:-0}" = 1 ] && d=$(run_go 1)
  rows+=("$r $g $t $d")
  say "round $r: deitkd $g, PyTorch $t, draft $d"
done

{
  printf '\nfeeding %d JPEGs (~500×375, %s KB on average), Resize 256 / CenterCrop 224 / normalise, batch 64, %d cores (%s)\n' "$N" "$(du -sk "$DIR" | awk -v n="$N" '{printf "%.0f", $1 / n}')" "$CORES" "$(uname -m)"
  printf '%-7s %13s %14s %7s %17s %18s' round 'deitkd img/s' 'PyTorch img/s' ratio 'deitkd cpu-ms/img' 'PyTorch cpu-ms/img'
  [ "${BENCH_FEED_DRAFT:-0}" = 1 ] && printf ' %13s' 'draft img/s'
  printf '\n'
  printf '%s\n' "${rows[@]}" | awk -v draft="${BENCH_FEED_DRAFT:-0}" '
    function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
    { n++; g[n] = $2; gc[n] = $3; t[n] = $4; tc[n] = $5; q[n] = $2 / $4; d[n] = $6
      printf "%-7s %13.0f %14.0f %6.2fx %17.2f %18.2f", $1, $2, $4, $2 / $4, $3, $5
      if (draft == 1) printf " %13.0f", $6
      printf "\n" }
    END { printf "%-7s %13.0f %14.0f %6.2fx %17.2f %18.2f", "median", median(g, n), median(t, n), median(q, n), median(gc, n), median(tc, n)
      if (draft == 1) printf " %13.0f", median(d, n)
      printf "\n" }'
}
