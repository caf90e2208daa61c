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
  local total=$SECONDS  # since the start, the bootstrap included
  echo "=== phase timings"
  printf '%s\n' "${timings[@]}"
  # CI's budget for `make test` is 45 minutes; issue 13's goal is 25, leaving room for the rest.
  printf '%-28s %5ds  (goal 1500 s: %s; budget 2700 s: %s)\n' "total" "$total" \
    "$( (( total <= 1500 )) && echo met || echo "over by $((total - 1500)) s")" \
    "$( (( total <= 2700 )) && echo within || echo "OVER by $((total - 2700)) s")"
}
trap report EXIT

# Debian's chromium for the documentation screenshots (a unit test), installed while lint runs.
mkdir -p "$root/tests/.artifacts"
"$root/scripts/ensure-chromium.sh" >"$root/tests/.artifacts/ensure-chromium.log" 2>&1 &
chromium_pid=$!
chromium_ready() {
  wait "$chromium_pid" || { cat "$root/tests/.artifacts/ensure-chromium.log" >&2; return 1; }
}

phase "lint" "$root/tests/lint.sh"
phase "chromium (docs screenshots)" chromium_ready
# Two processes (pytest-xdist): 49 s instead of 75 s on the 2-core machine (2 December 2026).
phase "unit and CLI tests" pytest -q -n 2
if [[ "${SKIP_CONTAINERS:-0}" == "1" ]]; then
  echo "SKIP_CONTAINERS=1: container scenarios NOT run; this is not a full test run" >&2
  exit 1
fi
phase "container scenarios" "$root/tests/testbed/run-scenarios.sh"
