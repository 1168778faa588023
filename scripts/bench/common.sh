# shellcheck shell=bash
# What scripts/bench_train_step.sh and scripts/bench_sqakd_step.sh share: sourced (not run) by
# both after they set ROOT (the repository root) and NAME (their file name, which starts every
# message). Both build one target of build-bench, time it against PyTorch on an idle machine and
# must agree on the folders, the Python, the argument checks and the build, so that lives here.
#
# Sets: OUT_DIR, BUILD_DIR (SQAKD_BENCH_BUILD_DIR overrides it), PY, and defines usage and the
# bench_* functions below.
# shellcheck disable=SC2034  # OUT_DIR, BENCH, LOAD, COMMAND and TMP are for the calling script

OUT_DIR="$ROOT/benchmarks/results"
BUILD_DIR=${SQAKD_BENCH_BUILD_DIR:-$ROOT/build-bench}
PY=/usr/bin/python3   # Debian's python3-torch; a python3 earlier on PATH may lack torch

# usage [STATUS]: the calling script's header comment (from its second line to the first line
# that is not a comment) on stdout, or on stderr for a non-zero STATUS; then exit STATUS.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&"$(( ${1:-0} ? 2 : 1 ))"; exit "${1:-0}"; }

# bench_command_line ARGS...: COMMAND, the command line as the records show it (shell-quoted).
bench_command_line() {
  local a
  COMMAND="scripts/$NAME"
  for a in "$@"; do COMMAND+=" $(printf '%q' "$a")"; done
}

# bench_check_counts VAR...: each named variable is a non-negative integer; ROUNDS, STEPS and
# THREADS are at least 1. Exits 2 otherwise.
bench_check_counts() {
  local v
  for v in "$@"; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$NAME: $v must be a non-negative integer, got '${!v}'" >&2; exit 2; }
  done
  (( ROUNDS >= 1 && STEPS >= 1 && THREADS >= 1 )) || { echo "$NAME: --rounds, --steps and --threads must be >= 1" >&2; exit 2; }
}

bench_require_torch() {
  "$PY" -c 'import torch' 2>/dev/null || { echo "$NAME: $PY cannot import torch (Debian: apt install python3-torch)" >&2; exit 1; }
}

# bench_build TARGET: configures BUILD_DIR once (Release, benchmarks only; the build is
# incremental), builds TARGET and sets BENCH to its executable.
bench_build() {
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSQAKD_BUILD_TESTS=OFF \
      -DSQAKD_BUILD_EXAMPLES=OFF -DSQAKD_BUILD_BENCHMARKS=ON >/dev/null
  fi
  cmake --build "$BUILD_DIR" --target "$1" -j "$(nproc)" >/dev/null
  BENCH="$BUILD_DIR/benchmarks/$1"
}

# bench_check_load: LOAD, the load averages before the run (recorded), and a warning when the
# machine is busy: timings are only meaningful on an otherwise idle machine.
bench_check_load() {
  LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  if awk -v l="${LOAD%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    echo "$NAME: WARNING: load average is $LOAD; other processes will distort the timings" >&2
  fi
}

# bench_tmpdir PREFIX: TMP, a fresh folder under TMPDIR (else /tmp), removed when the script exits.
bench_tmpdir() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
}
