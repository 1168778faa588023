#!/usr/bin/env bash
# scripts/run_tests.sh - what CI runs (.ci/run): install missing packages, then build and test
# sqakd in two configurations, both with -Werror:
#
#   gcc12-c++17     g++ (GCC 12), CMAKE_CXX_STANDARD=17   -> build-ci-gcc17/
#   clang14-c++20   clang++-14,   CMAKE_CXX_STANDARD=20   -> build-ci-clang20/
#
# Each: cmake configure (Release, SQAKD_WERROR=ON, SQAKD_BUILD_BENCHMARKS=OFF,
# SQAKD_BUILD_EXAMPLES=ON), cmake --build -j2, ctest --output-on-failure -j2. Both run even
# if the first fails; one summary line each; the exit status is non-zero if either failed.
#
# Options:  --clean         remove the two build directories first
#           --only gcc|clang  run one configuration
# Environment: SQAKD_JOBS (default 2), SQAKD_SKIP_SETUP=1 (do not call scripts/setup.sh).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

clean=0
only=""
while (($#)); do
    case "$1" in
        --clean) clean=1; shift ;;
        --only) only="${2:-}"; shift 2 || { echo "run_tests.sh: --only needs gcc or clang" >&2; exit 2; } ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_tests.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
case "$only" in ""|gcc|clang) ;; *) echo "run_tests.sh: --only takes gcc or clang" >&2; exit 2 ;; esac

jobs=${SQAKD_JOBS:-2}

if [[ "${SQAKD_SKIP_SETUP:-0}" != 1 ]]; then
    "$root/scripts/setup.sh" --profile tests || { echo "run_tests.sh: setup.sh failed" >&2; exit 1; }
fi

gxx=$(command -v g++-12 || command -v g++ || true)
clangxx=$(command -v clang++-14 || true)

summary=()
failed=0
t_start=$SECONDS

# run_config <name> <compiler> <c++ standard> <build dir>
run_config() {
    local name=$1 cxx=$2 std=$3 dir=$4 t0=$SECONDS stage=""
    echo
    echo "==================== $name: $cxx, C++$std, $dir ===================="
    if [[ -z "$cxx" ]]; then
        summary+=("FAIL  $name: compiler not found")
        failed=1
        return
    fi
    ((clean)) && rm -rf "${root:?}/$dir"
    # A build directory configured with another compiler cannot be reused: start it afresh.
    if [[ -f "$dir/CMakeCache.txt" ]] &&
       ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$cxx" "$dir/CMakeCache.txt"; then
        echo "run_tests.sh: $dir was configured with another compiler; removing it"
        rm -rf "${root:?}/$dir"
    fi
    if ! cmake -S "$root" -B "$dir" \
            -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CXX_COMPILER="$cxx" \
            -DCMAKE_CXX_STANDARD="$std" \
            -DCMAKE_CXX_STANDARD_REQUIRED=ON \
            -DCMAKE_CXX_EXTENSIONS=OFF \
            -DSQAKD_WERROR=ON \
            -DSQAKD_BUILD_TESTS=ON \
            -DSQAKD_BUILD_BENCHMARKS=OFF \
            -DSQAKD_BUILD_EXAMPLES=ON; then
        stage="configure"
    elif ! cmake --build "$dir" -j"$jobs"; then
        stage="build"
    elif ! (cd "$dir" && ctest --output-on-failure -j"$jobs"); then
        stage="test"
    fi
    local dt=$((SECONDS - t0))
    if [[ -z "$stage" ]]; then
        summary+=("PASS  $name ($cxx, C++$std, $dir) in ${dt}s")
    else
        summary+=("FAIL  $name ($cxx, C++$std, $dir): $stage failed after ${dt}s")
        failed=1
    fi
}

[[ -z "$only" || "$only" == gcc ]] && run_config gcc12-c++17 "$gxx" 17 build-ci-gcc17
[[ -z "$only" || "$only" == clang ]] && run_config clang14-c++20 "$clangxx" 20 build-ci-clang20

echo
echo "==================== sqakd test summary ===================="
for line in "${summary[@]}"; do echo "$line"; done
echo "total: $((SECONDS - t_start))s"
exit "$failed"
