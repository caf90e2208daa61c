#!/usr/bin/env bash
# The whole test suite, fastest first: lint, unit/CLI tests, then the container
# scenarios. Prints a timing line per phase; exits non-zero on the first failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
export PATH="$root/.venv/bin:$PATH"

declare -a timings=()
phase() {
  local name="$1"; shift
  local start=$SECONDS
  echo "=== phase: $name"
  "$@"
  timings+=("$(printf '%-28s %5ds' "$name" $((SECONDS - start)))")
}
report() {
  echo "=== phase timings"
  printf '%s\n' "${timings[@]}"
}
trap report EXIT

phase "lint" "$root/tests/lint.sh"
phase "unit and CLI tests" pytest -q
if [[ "${SKIP_CONTAINERS:-0}" == "1" ]]; then
  echo "SKIP_CONTAINERS=1: container scenarios NOT run; this is not a full test run" >&2
  exit 1
fi
phase "container scenarios" "$root/tests/testbed/run-scenarios.sh"
