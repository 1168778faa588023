#!/usr/bin/env bash
# Training-step speed of ResNet-20 (batch 256, 1x28x28, CE, Adam): sqakd vs PyTorch, side by side.
#
#   scripts/bench_train_step.sh [--steps N] [--warmup N] [--rounds N] [--layer-iters N]
#                               [--profile-steps N] [--threads N] [--out-dir DIR]
#
# Builds build-bench/benchmarks/sqakd_bench_train if needed (SQAKD_BENCH_BUILD_DIR overrides the
# folder), then in one invocation, on one machine:
#   1. --rounds alternating rounds: sqakd_bench_train (BM_resnet20_train_step) then
#      scripts/bench/torch_train_step.py step (the ResNet-20 of scripts/torch_ref/models.py), each
#      --warmup untimed and --steps timed steps; medians over all timed steps of all rounds;
#   2. the per-layer profiles: sqakd_bench_train's layer/ benchmarks, the same shapes in PyTorch and
#      torch.profiler's top ops;
#   3. scripts/bench/write_results.py writes <out-dir>/train_step_resnet20.{json,md} atomically.
# Defaults: 25 timed steps after 5 warm-up steps, 3 rounds, 20 iterations per layer, 2 threads,
# out-dir benchmarks/results. Run it on an otherwise idle machine: it warns when the load is high.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPS=25 WARMUP=5 ROUNDS=3 LAYER_ITERS=20 PROFILE_STEPS=5 THREADS=2
OUT_DIR="$ROOT/benchmarks/results"
BUILD_DIR=${SQAKD_BENCH_BUILD_DIR:-$ROOT/build-bench}
PY=/usr/bin/python3   # Debian's python3-torch; a python3 earlier on PATH may lack torch

COMMAND="scripts/bench_train_step.sh"
for a in "$@"; do COMMAND+=" $(printf '%q' "$a")"; done

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&"$(( ${1:-0} ? 2 : 1 ))"; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --layer-iters) LAYER_ITERS=$2; shift 2 ;;
    --profile-steps) PROFILE_STEPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "bench_train_step.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for v in STEPS WARMUP ROUNDS LAYER_ITERS PROFILE_STEPS THREADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench_train_step.sh: $v must be a non-negative integer, got '${!v}'" >&2; exit 2; }
done
(( ROUNDS >= 1 && STEPS >= 1 && THREADS >= 1 )) || { echo "bench_train_step.sh: --rounds, --steps and --threads must be >= 1" >&2; exit 2; }

"$PY" -c 'import torch' 2>/dev/null || { echo "bench_train_step.sh: $PY cannot import torch (Debian: apt install python3-torch)" >&2; exit 1; }

# 1. Build (configure once; the build is incremental).
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSQAKD_BUILD_TESTS=OFF \
    -DSQAKD_BUILD_EXAMPLES=OFF -DSQAKD_BUILD_BENCHMARKS=ON >/dev/null
fi
cmake --build "$BUILD_DIR" --target sqakd_bench_train -j "$(nproc)" >/dev/null
BENCH="$BUILD_DIR/benchmarks/sqakd_bench_train"

# Timings are only meaningful on an otherwise idle machine.
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  echo "bench_train_step.sh: WARNING: load average is $LOAD; other processes will distort the timings" >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sqakd_bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

export OMP_NUM_THREADS=$THREADS

SQ_STEP=() TORCH_STEP=()
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS: sqakd ($WARMUP warm-up + $STEPS timed steps)" >&2
  "$BENCH" --benchmark_filter='^BM_resnet20_train_step' --steps="$STEPS" --warmup="$WARMUP" \
    --step_log="$TMP/sqakd_steps.txt" --benchmark_format=json >"$TMP/sqakd_step_$r.json"
  SQ_STEP+=("$TMP/sqakd_step_$r.json")
  echo "round $r/$ROUNDS: PyTorch ($WARMUP warm-up + $STEPS timed steps)" >&2
  "$PY" "$ROOT/scripts/bench/torch_train_step.py" step --threads "$THREADS" --steps "$STEPS" \
    --warmup "$WARMUP" --out "$TMP/torch_step_$r.json"
  TORCH_STEP+=("$TMP/torch_step_$r.json")
done

# 2. Per-layer profiles.
echo "per-layer profile: sqakd ($LAYER_ITERS iterations per layer)" >&2
"$BENCH" --benchmark_filter='^layer/' --layer_iters="$LAYER_ITERS" --benchmark_format=json \
  >"$TMP/sqakd_layers.json"
echo "per-layer profile: PyTorch ($LAYER_ITERS iterations per layer, $PROFILE_STEPS steps under torch.profiler)" >&2
"$PY" "$ROOT/scripts/bench/torch_train_step.py" profile --threads "$THREADS" --layer-iters "$LAYER_ITERS" \
  --profile-steps "$PROFILE_STEPS" --warmup "$WARMUP" --out "$TMP/torch_profile.json"

# 3. Results.
"$PY" "$ROOT/scripts/bench/write_results.py" \
  --sqakd-step "${SQ_STEP[@]}" --sqakd-steplog "$TMP/sqakd_steps.txt" --sqakd-layers "$TMP/sqakd_layers.json" \
  --torch-step "${TORCH_STEP[@]}" --torch-profile "$TMP/torch_profile.json" \
  --threads "$THREADS" --command "$COMMAND" --load-before "$LOAD" --root "$ROOT" \
  --out-json "$OUT_DIR/train_step_resnet20.json" --out-md "$OUT_DIR/train_step_resnet20.md"
