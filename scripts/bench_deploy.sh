#!/usr/bin/env bash
# Integer deployment speed (issue 4): sqakd's integer kernels and networks against oneDNN's int8
# convolution and PyTorch's int8 ResNet-20, side by side in one run.
#
#   scripts/bench_deploy.sh [--rounds N] [--threads N] [--min-time S] [--out-dir DIR]
#
# Builds build-bench/benchmarks/sqakd_bench_deploy if needed (SQAKD_BENCH_BUILD_DIR overrides
# the folder), then, on one machine:
#   1. every conv kernel once: BM_conv/<tier>/W<w>A<a>/<layer> for the five ResNet-20 layer
#      shapes, the tiers this CPU runs, W1A1 W2A2 W4A4 W4A8 W8A8 (GOP/s per kernel, bit width, ISA);
#   2. --rounds alternating rounds of
#        a. sqakd_bench_deploy: our best tier's W8A8 convs next to BM_onednn_conv (oneDNN int8,
#           u8 x s8 -> s32, format_tag::any, weight reorder outside the timing; its
#           implementation name is recorded), and the end-to-end networks BM_resnet20_int
#           (FP32 teacher, W8A8 W4A8 W4A4 W2A2 W1A1; batch 1 on one thread, batch 64 on
#           --threads);
#        b. scripts/bench/torch_int8_resnet20.py: PyTorch int8 (FX post-training quantization,
#           onednn engine) and FP32 ResNet-20 at batch 1 and 64 with --threads threads;
#      each Google Benchmark number is the median of 3 repetitions, the round figure the median
#      over rounds;
#   3. scripts/bench/write_deploy_results.py writes <out-dir>/deploy_resnet20.{json,md}.
# Defaults: 3 rounds, 2 threads (oneDNN via OMP_NUM_THREADS, PyTorch via set_num_threads), min-time
# 0.2 s, out-dir benchmarks/results. Run it on an otherwise idle machine: it warns when the load
# is high. SQAKD_BENCH_COMMIT, when set, is recorded as the commit instead of asking git.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=bench_deploy.sh
# shellcheck source=scripts/bench/common.sh
source "$ROOT/scripts/bench/common.sh"
ROUNDS=3 THREADS=2 STEPS=1 MIN_TIME=0.2

bench_command_line "$@"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$NAME: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
bench_check_counts ROUNDS THREADS
[[ $MIN_TIME =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$NAME: --min-time must be a number of seconds, got '$MIN_TIME'" >&2; exit 2; }

bench_require_torch
bench_build sqakd_bench_deploy
"$BENCH" --benchmark_list_tests=true | grep -q '^BM_onednn_conv/' ||
  { echo "$NAME: $BENCH was built without oneDNN (scripts/install_bench_deps.sh installs libdnnl-dev; then remove $BUILD_DIR/CMakeCache.txt)" >&2; exit 1; }
bench_check_load
bench_tmpdir sqakd_bench_deploy
export OMP_NUM_THREADS=$THREADS

gb() {  # gb FILTER OUT: one sqakd_bench_deploy run, 3 repetitions, JSON
  "$BENCH" --threads="$THREADS" --benchmark_filter="$1" --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions=3 --benchmark_format=json >"$2"
}

echo "every conv kernel (tiers x bit widths x layers)" >&2
gb '^BM_conv/|^BM_onednn_conv/' "$TMP/kernels.json"

SQ=() TORCH=()
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS: sqakd W8A8 convs + oneDNN int8 convs, sqakd networks" >&2
  gb '^BM_conv/best/W8A8/|^BM_onednn_conv/|^BM_resnet20_' "$TMP/sqakd_$r.json"
  SQ+=("$TMP/sqakd_$r.json")
  echo "round $r/$ROUNDS: PyTorch int8 and FP32 ResNet-20" >&2
  "$PY" "$ROOT/scripts/bench/torch_int8_resnet20.py" --threads "$THREADS" --out "$TMP/torch_$r.json" >&2
  TORCH+=("$TMP/torch_$r.json")
done

"$PY" "$ROOT/scripts/bench/write_deploy_results.py" --kernels "$TMP/kernels.json" --sqakd "${SQ[@]}" \
  --torch "${TORCH[@]}" --threads "$THREADS" --command "$COMMAND" --load-before "$LOAD" --root "$ROOT" \
  --out-json "$OUT_DIR/deploy_resnet20.json" --out-md "$OUT_DIR/deploy_resnet20.md"
