#!/usr/bin/env bash
# scripts/run_demo.sh [demo arguments...] - install missing packages (profile demo), build the
# sqakd_demo example (Release, in build/) and run it with the given arguments.
#
# Environment: SQAKD_BUILD_DIR (default build), SQAKD_JOBS (default 2),
#              SQAKD_SKIP_SETUP=1 (do not call scripts/setup.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${SQAKD_BUILD_DIR:-build}
jobs=${SQAKD_JOBS:-2}

if [[ "${SQAKD_SKIP_SETUP:-0}" != 1 ]]; then
    "$root/scripts/setup.sh" --profile demo
fi

# A fresh build directory gets tests and benchmarks off (the demo profile installs neither
# doctest nor Google Benchmark); an existing one keeps the choices made for it.
extra=()
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    extra=(-DSQAKD_BUILD_TESTS=OFF -DSQAKD_BUILD_BENCHMARKS=OFF)
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSQAKD_BUILD_EXAMPLES=ON "${extra[@]}" >/dev/null
if ! cmake --build "$build" --target sqakd_demo -j"$jobs"; then
    echo "run_demo.sh: building sqakd_demo failed (it is examples/demo.cpp, target sqakd_demo" \
         "in examples/CMakeLists.txt)" >&2
    exit 1
fi
exec "$build/examples/sqakd_demo" "$@"
