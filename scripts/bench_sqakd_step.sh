#!/usr/bin/env bash
# One SQAKD distillation step of ResNet-20 (batch 256, 1x28x28): sqakd vs PyTorch, side by side.
#
#   scripts/bench_sqakd_step.sh [--steps N] [--warmup N] [--rounds N] [--threads N] [--bits "4 2"]
#                               [--no-parts] [--out-dir DIR]
#
# The step (train::distill's, SQAKD.md §2, §5): teacher forward (eval), interval-quantized student
# forward (train) and backward, sqakd_kl (T = 4), Adam over the model parameters (lr 1e-3, L2 1e-4)
# and Adam over the quantizer parameters (lr 1e-5); random-weight teacher, fixed N(0, 1) batch.
# Builds build-bench/benchmarks/sqakd_bench_sqakd if needed (SQAKD_BENCH_BUILD_DIR overrides the
# folder), then in one invocation, on one machine:
#   1. --rounds alternating rounds of, for each W<b>A<b> in --bits: sqakd_bench_sqakd
#      BM_resnet20_sqakd_step/<b> then scripts/bench/torch_sqakd_step.py step --variant sqakd;
#      then BM_resnet20_kd_fp_step then torch_sqakd_step.py --variant fp_student (the same step
#      with an FP student: the fake-quantization overhead). Each run: --warmup untimed and
#      --steps timed steps (sqakd does one more untimed step first, which initialises the
#      quantizers; PyTorch initialises them with one forward). Medians over all timed steps of all
#      rounds;
#   2. unless --no-parts, sqakd's per-phase breakdown (BM_sqakd_step_parts/<b> and /fp: zero_grad,
#      teacher forward, student forward, loss, student backward, optimisers), one run each;
#   3. scripts/bench/write_sqakd_results.py writes <out-dir>/sqakd_step_resnet20.{json,md}
#      atomically.
# Defaults: 20 timed steps after 5 warm-up steps, 3 rounds, 2 threads, bits "4 2", out-dir
# benchmarks/results. Run it on an otherwise idle machine: it warns when the load is high.
# SQAKD_BENCH_COMMIT, when set, is recorded as the commit instead of asking git.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=bench_sqakd_step.sh
# OUT_DIR, BUILD_DIR, PY, usage and the bench_* functions, shared with bench_train_step.sh
# shellcheck source=scripts/bench/common.sh
source "$ROOT/scripts/bench/common.sh"
STEPS=20 WARMUP=5 ROUNDS=3 THREADS=2 BITS="4 2" PARTS=1

bench_command_line "$@"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --bits) BITS=$2; shift 2 ;;
    --no-parts) PARTS=0; shift ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$NAME: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
bench_check_counts STEPS WARMUP ROUNDS THREADS
read -r -a BIT_LIST <<<"$BITS"
(( ${#BIT_LIST[@]} >= 1 )) || { echo "$NAME: --bits needs at least one bit width" >&2; exit 2; }
for b in "${BIT_LIST[@]}"; do
  [[ $b == 4 || $b == 2 ]] || { echo "$NAME: --bits: sqakd_bench_sqakd has W4A4 and W2A2 students, got '$b'" >&2; exit 2; }
done

bench_require_torch

# 1. Build (configure once; the build is incremental); sets BENCH.
bench_build sqakd_bench_sqakd

# Timings are only meaningful on an otherwise idle machine: sets LOAD, warns when it is high.
bench_check_load
bench_tmpdir sqakd_bench_sqakd

export OMP_NUM_THREADS=$THREADS

# One sqakd run: $1 = benchmark name (Google Benchmark appends "/iterations:N/manual_time"),
# $2 = output JSON.
run_sqakd() {
  "$BENCH" --benchmark_filter="^$1/" --steps="$STEPS" --warmup="$WARMUP" \
    --step_log="$TMP/sqakd_steps.txt" --benchmark_format=json >"$2"
}
# One PyTorch run: $1 = variant, $2 = bits, $3 = output JSON.
run_torch() {
  "$PY" "$ROOT/scripts/bench/torch_sqakd_step.py" step --variant "$1" --w-bits "$2" --a-bits "$2" \
    --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" --out "$3"
}

SQ=() TORCH=()
for ((r = 1; r <= ROUNDS; r++)); do
  for b in "${BIT_LIST[@]}"; do
    echo "round $r/$ROUNDS: sqakd W${b}A${b} ($WARMUP warm-up + $STEPS timed steps)" >&2
    run_sqakd "BM_resnet20_sqakd_step/$b" "$TMP/sqakd_w${b}_$r.json"
    SQ+=("$TMP/sqakd_w${b}_$r.json")
    echo "round $r/$ROUNDS: PyTorch W${b}A${b} ($WARMUP warm-up + $STEPS timed steps)" >&2
    run_torch sqakd "$b" "$TMP/torch_w${b}_$r.json"
    TORCH+=("$TMP/torch_w${b}_$r.json")
    if [[ $b == "${BIT_LIST[0]}" ]]; then
      echo "round $r/$ROUNDS: sqakd FP student ($WARMUP warm-up + $STEPS timed steps)" >&2
      run_sqakd "BM_resnet20_kd_fp_step" "$TMP/sqakd_fp_$r.json"
      SQ+=("$TMP/sqakd_fp_$r.json")
      echo "round $r/$ROUNDS: PyTorch FP student ($WARMUP warm-up + $STEPS timed steps)" >&2
      run_torch fp_student "$b" "$TMP/torch_fp_$r.json"   # bits unused by fp_student
      TORCH+=("$TMP/torch_fp_$r.json")
    fi
  done
done

# 2. Where sqakd's time goes.
PARTS_ARGS=()
if (( PARTS )); then
  parts_filter="^BM_sqakd_step_parts/($(IFS='|'; echo "${BIT_LIST[*]}")|fp)/"
  echo "per-phase breakdown: sqakd ($WARMUP warm-up + $STEPS timed steps per student)" >&2
  "$BENCH" --benchmark_filter="$parts_filter" --steps="$STEPS" --warmup="$WARMUP" --benchmark_format=json \
    >"$TMP/sqakd_parts.json"
  PARTS_ARGS=(--sqakd-parts "$TMP/sqakd_parts.json")
fi

# 3. Results.
"$PY" "$ROOT/scripts/bench/write_sqakd_results.py" \
  --sqakd "${SQ[@]}" --sqakd-steplog "$TMP/sqakd_steps.txt" --torch "${TORCH[@]}" "${PARTS_ARGS[@]}" \
  --threads "$THREADS" --command "$COMMAND" --load-before "$LOAD" --root "$ROOT" \
  --out-json "$OUT_DIR/sqakd_step_resnet20.json" --out-md "$OUT_DIR/sqakd_step_resnet20.md"
