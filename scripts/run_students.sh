#!/usr/bin/env bash
# The student accuracy table of issue 3: runs every job of a jobs file with sqakd_distill,
# skipping finished jobs and resuming interrupted ones from their last.sqakd, then aggregates
# the records into students_resnet20_fmnist.{json,md,png}.
#
#   scripts/run_students.sh [--jobs FILE] [--out DIR] [--build DIR] [--only N] [--aggregate-only]
#
# Jobs (default <out>/jobs.txt), one per line:
#   quantizer bits method seed [keep-epoch|-] [setting=value ...]
# settings: epochs (default 6), delta (EWGS delta, default 0), ewgs_every (Hessian update of the
# deltas every N epochs), temperature (default 4); each one set is appended to the run's name.
# Each job runs in <out>/<quantizer>_w<b>a<b>_<method>_seed<s>[_<setting><value>...]/ (default
# out: benchmarks/results/students_resnet20_fmnist, the table of issue 3) and leaves there:
# metrics.jsonl, run.log, result.json (the record), final.sqakd (the trained student, no
# optimiser state) and, with keep-epoch k, epoch_<k>.sqakd (full state, for the CI resume test).
# --only N stops after N jobs were run by this call (to fit a session). The aggregate is the
# table of the default out directory; any other out directory gets the explore table
# (scripts/aggregate_results.py explore).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_rel=benchmarks/results/students_resnet20_fmnist
jobs=""
build=$root/build
only=0
aggregate_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --out) out_rel=${2%/}; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --aggregate-only) aggregate_only=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run_students.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
out_rel=${out_rel#"$root"/}   # recorded commands use paths relative to the repository root
if [[ "$out_rel" == /* ]]; then out=$out_rel; else out=$root/$out_rel; fi
[[ -n "$jobs" ]] || jobs=$out/jobs.txt
[[ -f "$jobs" ]] || { echo "run_students.sh: no jobs file '$jobs'" >&2; exit 1; }
tool=$build/examples/sqakd_distill
# Threads wait passively: with spinning OpenMP threads, anything else running on the machine
# (a build) slows a 2-thread run several-fold. Does not change any result.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# A finished job keeps final.sqakd (no optimiser state), the kept epoch (if any), logs and record.
cleanup() {
  local dir=$1 keep=$2 f
  [[ -f "$dir/final.sqakd" ]] || return 0
  for f in "$dir"/epoch_*.sqakd; do
    [[ -e "$f" ]] || continue
    [[ -n "$keep" && "$f" == "$dir/epoch_$keep.sqakd" ]] && continue
    rm -f "$f"
  done
  rm -f "$dir/last.sqakd"
}
if (( ! aggregate_only )); then
  if [[ ! -x "$tool" ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSQAKD_BUILD_TESTS=OFF -DSQAKD_BUILD_BENCHMARKS=OFF
    cmake --build "$build" --target sqakd_distill -j2
  fi
  ran=0
  while read -r q bits method seed keep settings; do
    [[ -z "${q:-}" || "$q" == \#* ]] && continue
    [[ "${keep:-}" == - ]] && keep=""
    name=${q}_w${bits}a${bits}_${method}_seed${seed}
    epochs=6
    extra=()
    for kv in ${settings:-}; do
      k=${kv%%=*} v=${kv#*=}
      case "$k" in
        epochs) epochs=$v ;;
        delta) extra+=(--delta "$v") ;;
        ewgs_every) extra+=(--ewgs-update-every "$v") ;;
        temperature) extra+=(--temperature "$v") ;;
        *) echo "run_students.sh: unknown setting '$kv' in $jobs (epochs, delta, ewgs_every, temperature)" >&2; exit 2 ;;
      esac
      name+=_$k$v
    done
    dir=$out/$name
    if [[ -f "$dir/result.json" ]]; then echo "$name: done"; cleanup "$dir" "${keep:-}"; continue; fi
    if (( only > 0 && ran >= only )); then echo "$name: left for a later call (--only $only)"; continue; fi
    mkdir -p "$dir"
    echo "$name: running (log: $out_rel/$name/run.log)"
    # paths relative to the repository root, so the recorded command is reproducible anywhere
    (cd "$root" && "$tool" --teacher "benchmarks/results/teacher_resnet20_fmnist/seed$seed/last.sqakd" \
        --quantizer "$q" --bits "$bits" --method "$method" --seed "$seed" --epochs "$epochs" --batch 256 --threads 2 ${extra[@]+"${extra[@]}"} \
        --run-dir "$out_rel/$name" --record "$out_rel/$name/result.json" 2>&1 | tr '\r' '\n' | grep -v '^ ' >> "$dir/run.log")
    if [[ -f "$dir/result.json" ]]; then
      cleanup "$dir" "${keep:-}"
      tail -1 "$dir/run.log"
    fi
    ran=$((ran + 1))
  done < "$jobs"
fi
if [[ "$out_rel" == benchmarks/results/students_resnet20_fmnist ]]; then
  /usr/bin/python3 "$root/scripts/aggregate_results.py" students "$out" "$out"
else
  /usr/bin/python3 "$root/scripts/aggregate_results.py" explore "$out" "$out"
fi
