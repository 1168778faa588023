#!/usr/bin/env bash
# Full teacher recipe (SQAKD.md §5): ResNet-20 on Fashion-MNIST, 8 epochs, seeds 0 and 1,
# 2 threads. Resumable: rerun after an interruption and each seed continues from its
# last.sqakd. Results: benchmarks/results/teacher_resnet20_fmnist/{seed0,seed1}/ (metrics.jsonl,
# epoch_7.sqakd, last.sqakd, result.json) and teacher_resnet20_fmnist.{json,md}.
#
#   scripts/run_teacher_recipe.sh [build-dir]     (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=$root/benchmarks/results/teacher_resnet20_fmnist
tool=$build/examples/sqakd_train_teacher
if [ ! -x "$tool" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSQAKD_BUILD_TESTS=OFF -DSQAKD_BUILD_BENCHMARKS=OFF
  cmake --build "$build" --target sqakd_train_teacher -j2
fi
mkdir -p "$out"
for seed in 0 1; do
  dir=$out/seed$seed
  if [ -f "$dir/result.json" ]; then echo "seed $seed: done ($dir/result.json)"; continue; fi
  # paths relative to the repository root, so the recorded command is reproducible anywhere
  (cd "$root" && "$tool" --seed "$seed" --epochs 8 --batch 256 --threads 2 \
      --run-dir "benchmarks/results/teacher_resnet20_fmnist/seed$seed" \
      --record "benchmarks/results/teacher_resnet20_fmnist/seed$seed/result.json")
  # keep the epoch-7 checkpoint (resume test) and the final one; drop the others
  for k in 1 2 3 4 5 6 8; do rm -f "$dir/epoch_$k.sqakd"; done
done
/usr/bin/env python3 "$root/scripts/aggregate_results.py" teacher "$out" "$root/benchmarks/results/teacher_resnet20_fmnist"
