#!/usr/bin/env bash
# make bench-train: stage two's training step in deitkd against PyTorch 1.13 (Debian's, 2
# threads), measured in one command, and both against the machine's limit.
#
#   - Compiles student's test binary once (go test -c).
#   - For each shape of BenchmarkTrainStep — fm-tiny (B 128) and DeiT-tiny's shape on
#     3×96×96 (B 64) — runs ROUNDS rounds, each deitkd then scripts/bench_train_torch.py, one
#     shape per process (so each peak RSS is that model's), and prints the median of the
#     rounds of img/s, CPU-ms per image (getrusage: less disturbed by other load than img/s)
#     and peak RSS, with the ratios deitkd/PyTorch (for RSS PyTorch/deitkd: above 1 is less).
#   - Measures the machine's sgemm: a 2048² float32 product through student's sgemm on both
#     cores (BenchmarkSgemm), and prints the speed-of-light table: each model's FLOP per image
#     for forward + backward (3× the forward's matrix products, BenchmarkTrainStep's
#     MFLOP/img), the GFLOP/s each side achieves, and its fraction of the sgemm limit.
#
# Environment: BENCH_TRAIN_ROUNDS (3), BENCH_TRAIN_SHAPES ("fm-tiny deit-tiny-96"), BENCH_TRAIN_STEPS_FM (20) and BENCH_TRAIN_STEPS_DEIT (6):
# timed steps per process after the warm-up (deitkd: one step, which builds the graph;
# PyTorch: three), GO (go), PYTHON (/usr/bin/python3).
set -euo pipefail

ROUNDS=${BENCH_TRAIN_ROUNDS:-3}
SHAPES=${BENCH_TRAIN_SHAPES:-fm-tiny deit-tiny-96}
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GOFLAGS=${GOFLAGS:--mod=mod}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

say() { printf 'bench-train: %s\n' "$*" >&2; }

# field UNIT: the number before UNIT on a benchmark line; after: the number after it
# (bench_train_torch.py's "img/s N").
field() { awk -v u="$1" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}'; }
after() { awk -v u="$1" '{for (i = 1; i < NF; i++) if ($i == u) print $(i+1)}'; }
# median of the numbers on stdin
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

say "compiling student's benchmarks"
(cd "$ROOT" && "$GO" test -c -o "$TMP/student.test" ./student/)
load0=$(uptime | sed 's/.*load average: //')

for shape in $SHAPES; do
  steps=${BENCH_TRAIN_STEPS_FM:-20}
  [ "$shape" = deit-tiny-96 ] && steps=${BENCH_TRAIN_STEPS_DEIT:-6}
  for r in $(seq "$ROUNDS"); do
    say "$shape round $r/$ROUNDS: deitkd"
    line=$(cd "$ROOT/student" && "$TMP/student.test" -test.run '^$' -test.bench "^BenchmarkTrainStep\$/^$shape\$" \
      -test.benchtime "${steps}x" -test.cpu 2 | grep '^BenchmarkTrainStep')
    echo "$line" | field img/s >>"$TMP/$shape.go.ips"
    echo "$line" | field cpu-ms/img >>"$TMP/$shape.go.cpu"
    echo "$line" | field maxrss-MiB >>"$TMP/$shape.go.rss"
    echo "$line" | field MFLOP/img >"$TMP/$shape.mflop"
    say "$shape round $r/$ROUNDS: PyTorch"
    line=$("$PYTHON" "$ROOT/scripts/bench_train_torch.py" --shape "$shape" --threads 2 --steps "$steps")
    echo "$line" | after img/s >>"$TMP/$shape.torch.ips"
    echo "$line" | after cpu-ms/img >>"$TMP/$shape.torch.cpu"
    echo "$line" | after maxrss-MiB >>"$TMP/$shape.torch.rss"
  done
done

say "sgemm 2048² on 2 cores"
(cd "$ROOT/student" && "$TMP/student.test" -test.run '^$' -test.bench '^BenchmarkSgemm$/^2048x2048x2048$' \
  -test.benchtime 5x -test.cpu 2 | grep '^BenchmarkSgemm') >"$TMP/sgemm"
gflops=$(field GFLOP/s <"$TMP/sgemm")
cpuflops=$(field GFLOP/cpu-s <"$TMP/sgemm")
load1=$(uptime | sed 's/.*load average: //')

printf '\ntraining step, median of %s alternating rounds; load average %s before, %s after (%s cores)\n' \
  "$ROUNDS" "$load0" "$load1" "$(nproc)"
printf '%-20s %-20s %9s %11s %11s\n' shape side img/s cpu-ms/img maxrss-MiB
for shape in $SHAPES; do
  B=128 target=3.0
  [ "$shape" = deit-tiny-96 ] && B=64 target=2.0
  for side in go torch; do
    for m in ips cpu rss; do eval "${side}_$m=$(median <"$TMP/$shape.$side.$m")"; done
  done
  printf '%-20s %-20s %9.1f %11.2f %11.0f\n' "$shape B=$B" deitkd "$go_ips" "$go_cpu" "$go_rss" \
    '' 'PyTorch (2 threads)' "$torch_ips" "$torch_cpu" "$torch_rss"
  awk -v gi="$go_ips" -v ti="$torch_ips" -v gc="$go_cpu" -v tc="$torch_cpu" -v gr="$go_rss" -v tr="$torch_rss" -v t="$target" \
    'BEGIN { printf "%-20s %-20s %8.2f× %10.2f× %10.2f×  (img/s target >= %.1f; RSS: PyTorch/deitkd, >= 1 is no higher)\n", "", "ratio", gi / ti, tc / gc, tr / gr, t }'
done

printf '\nspeed of light: sgemm 2048² through student'"'"'s sgemm on 2 cores: %.1f GFLOP/s, %.1f GFLOP per CPU-second\n' "$gflops" "$cpuflops"
printf '(GFLOP/s: FLOP per image × img/s, against the 2-core figure; per CPU-s: FLOP per image ÷ CPU-s per image,\n against the per-CPU-second figure: the share of each core'"'"'s time spent at sgemm speed, less load-dependent)\n'
printf '%-14s %10s %-7s %9s %9s %9s %9s\n' shape MFLOP/img side GFLOP/s fraction 'per CPU-s' fraction
for shape in $SHAPES; do
  mflop=$(cat "$TMP/$shape.mflop")
  for side in go torch; do
    ips=$(median <"$TMP/$shape.$side.ips")
    cpu=$(median <"$TMP/$shape.$side.cpu")
    name=deitkd
    [ "$side" = torch ] && name=PyTorch
    awk -v s="$shape" -v f="$mflop" -v n="$name" -v ips="$ips" -v cpu="$cpu" -v l="$gflops" -v lc="$cpuflops" \
      'BEGIN { g = ips * f / 1000; c = f / cpu; printf "%-14s %10.1f %-7s %9.1f %8.1f%% %9.1f %8.1f%%\n", s, f, n, g, 100 * g / l, c, 100 * c / lc }'
  done
done
