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
NAME=bench_train_step.sh
# OUT_DIR, BUILD_DIR, PY, usage and the bench_* functions, shared with bench_sqakd_step.sh
# shellcheck source=scripts/bench/common.sh
source "$ROOT/scripts/bench/common.sh"
STEPS=25 WARMUP=5 ROUNDS=3 LAYER_ITERS=20 PROFILE_STEPS=5 THREADS=2

bench_command_line "$@"
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
    *) echo "$NAME: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
bench_check_counts STEPS WARMUP ROUNDS LAYER_ITERS PROFILE_STEPS THREADS

bench_require_torch

# 1. Build (configure once; the build is incremental); sets BENCH.
bench_build sqakd_bench_train

# Timings are only meaningful on an otherwise idle machine: sets LOAD, warns when it is high.
bench_check_load
bench_tmpdir sqakd_bench

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
