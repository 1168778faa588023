#!/usr/bin/env bash
# scripts/install_bench_deps.sh - install the missing packages the benchmarks need: the build
# tools and library dependencies, Google Benchmark, oneDNN (baseline), PyTorch (baseline, and
# golden data) and matplotlib (plots). Extra arguments go to setup.sh (e.g. --check).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --profile bench "$@"
