#!/usr/bin/env bash
# Download the wheels the analytics role installs on a server (roles/analytics/files/requirements.txt,
# every package pinned, nothing else), so that the server never needs to reach PyPI:
#
#   scripts/analytics-wheelhouse.sh [--python 3.11] [--arch x86_64] [OUT_DIR]
#
# --python: the server's Python (Debian 12: 3.11, Debian 13: 3.13); --arch: its machine
# (x86_64 or aarch64). OUT_DIR defaults to .cache/analytics-wheelhouse, where the role looks
# (analytics_wheelhouse); the wheels land in OUT_DIR/cp<version>-<arch>/. Run it once per
# release of the toolkit, from a machine that reaches PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python_version=3.11
arch=x86_64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) python_version="${2:?--python needs a version like 3.11}"; shift 2 ;;
    --arch) arch="${2:?--arch needs x86_64 or aarch64}"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ "$python_version" =~ ^3\.[0-9]+$ ]] || { echo "--python: expected a version like 3.11, got: $python_version" >&2; exit 2; }
case "$arch" in x86_64|aarch64) ;; *) echo "--arch: expected x86_64 or aarch64, got: $arch" >&2; exit 2 ;; esac
out="${1:-$root/.cache/analytics-wheelhouse}/cp${python_version/./}-${arch}"
mkdir -p "$out"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python=python3
"$python" -m pip download --quiet --dest "$out" --only-binary=:all: --no-deps \
  --python-version "$python_version" --implementation cp \
  --platform "manylinux_2_28_${arch}" --platform "manylinux_2_17_${arch}" --platform "manylinux2014_${arch}" \
  -r "$root/roles/analytics/files/requirements.txt" 2> >(grep -v "^WARNING: Location" >&2)
echo "$out: $(find "$out" -name '*.whl' | wc -l) wheels"
