# Shared helpers for the test-bed scripts. Sourced, not executed.
# shellcheck shell=bash

testbed_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
repo_root="$(cd "$testbed_dir/../.." && pwd)"
work_dir="$testbed_dir/.work"
mkdir -p "$work_dir"

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }

# Wait until "$@" succeeds, at most $1 seconds (polling once a second).
wait_for() {
  local limit="$1"; shift
  local waited=0
  until "$@" >/dev/null 2>&1; do
    (( waited >= limit )) && return 1
    sleep 1
    waited=$((waited + 1))
  done
}
