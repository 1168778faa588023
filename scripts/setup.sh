#!/usr/bin/env bash
# scripts/setup.sh - install the Debian 12 packages sqakd needs, and only the missing ones.
#
#   scripts/setup.sh --profile tests    build tools (GCC 12, Clang 14 + libomp), library deps,
#                                       doctest, CLI11, nlohmann-json, Fashion-MNIST
#   scripts/setup.sh --profile demo     build tools (GCC), library deps, what the examples need
#   scripts/setup.sh --profile bench    build tools, library deps, Google Benchmark, oneDNN,
#                                       PyTorch and matplotlib (baselines and plots)
#   scripts/setup.sh --profile tests --profile bench    profiles add up
#   scripts/setup.sh --profile tests --check            list what is missing, install nothing
#
# Installed packages are detected with dpkg-query; `apt-get update` only runs when something
# is missing, so a second run does nothing and needs no network. Runs apt-get directly as
# root (CI), through sudo otherwise; without either it prints the command and fails.
set -euo pipefail

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# What every profile needs: a C++17 compiler and the library's own dependencies.
# make and libc6-dev are listed because --no-install-recommends leaves them out (cmake and
# gcc only recommend them).
base=(cmake make g++ libc6-dev pkg-config
      libxtensor-dev xtl-dev libxsimd-dev libxtensor-blas-dev libopenblas-openmp-dev zlib1g-dev)
examples=(libcli11-dev nlohmann-json3-dev dataset-fashion-mnist)

profiles=()
check_only=0
while (($#)); do
    case "$1" in
        --profile) [[ $# -ge 2 ]] || { echo "setup.sh: --profile needs a value" >&2; exit 2; }
                   profiles+=("$2"); shift 2 ;;
        --profile=*) profiles+=("${1#--profile=}"); shift ;;
        --check) check_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
((${#profiles[@]})) || profiles=(tests)

wanted=()
for p in "${profiles[@]}"; do
    case "$p" in
        tests) wanted+=("${base[@]}" clang-14 libomp-14-dev doctest-dev "${examples[@]}") ;;
        demo)  wanted+=("${base[@]}" "${examples[@]}") ;;
        bench) wanted+=("${base[@]}" libbenchmark-dev libdnnl-dev python3-torch python3-matplotlib) ;;
        *) echo "setup.sh: unknown profile '$p' (tests, demo or bench)" >&2; exit 2 ;;
    esac
done
# Deduplicate, keep order.
declare -A seen=()
packages=()
for pkg in "${wanted[@]}"; do
    [[ -n "${seen[$pkg]:-}" ]] && continue
    seen[$pkg]=1
    packages+=("$pkg")
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup.sh: dpkg-query not found: this script is for Debian 12 (bookworm)." >&2
    echo "setup.sh: install the equivalents of: ${packages[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == *" ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "setup.sh: all ${#packages[@]} packages for profile(s) ${profiles[*]} are installed"
    exit 0
fi
echo "setup.sh: missing for profile(s) ${profiles[*]}: ${missing[*]}"
if ((check_only)); then
    exit 1
fi

apt_install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -eq 0 ]]; then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
else
    echo "setup.sh: not root and sudo is not available. As root, run:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive ${apt_install[*]}" >&2
    exit 1
fi

"${as_root[@]}" apt-get update
"${as_root[@]}" "${apt_install[@]}"

# Verify: a package apt could not find or configure must not pass silently.
still=()
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == *" ok installed" ]] || still+=("$pkg")
done
if ((${#still[@]})); then
    echo "setup.sh: still missing after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "setup.sh: installed ${missing[*]}"
