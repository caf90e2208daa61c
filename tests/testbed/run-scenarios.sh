#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run every molecule scenario of the container test bed, in order:
#   1. ensure a docker daemon (ensure-docker.sh), 2. build/refresh the base
#   images (build-image.sh, cached), 3. `molecule test -s <name>` per scenario.
# Prints a per-scenario timing table, writes tests/.artifacts/scenario-timings.json,
# exits non-zero when any scenario fails. On exit (also on failure or Ctrl-C) it
# destroys the containers of the scenarios it ran and stops a dockerd only if it
# started one.
#
# Environment:
#   SCENARIOS="bed other"   run only these (names from the lists below, in list order); a
#                           pending scenario runs only when named here, and its result is
#                           reported as pending, never as part of CI's pass
#   SCENARIO_TIMEOUT=1800   seconds one scenario may take before it is killed
#   FAIL_FAST=1             stop at the first failing scenario
#   SCENARIO_BUDGET=2700    seconds the scenarios may take together; the table says how the total
#                           compares (a number to watch, not a verdict)
#   CI=true                 (set by CI) refuse a SCENARIOS that skips one of ALL_SCENARIOS, and
#                           fail when any of ALL_SCENARIOS did not run
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The scenarios, in the order they run. Add yours with ONE line here.
ALL_SCENARIOS=(
  bed
  standin
  common
  nginx
  site-debian12
  site-debian13
  site-options
  settings
)
# Scenarios that exist but do NOT pass yet, so CI does not run them; each line says why.
# They are printed as NOT RUN in every report: nothing here counts as passing.
PENDING_SCENARIOS=(
)

tests_dir="$repo_root/tests"
artifacts="$tests_dir/.artifacts"
mkdir -p "$artifacts"
[[ -x "$repo_root/.venv/bin/molecule" ]] && export PATH="$repo_root/.venv/bin:$PATH"
command -v molecule >/dev/null || die "molecule not found: run scripts/bootstrap.sh (make bootstrap)"
scenario_timeout="${SCENARIO_TIMEOUT:-1800}"

selected=()
if [[ -n "${SCENARIOS:-}" ]]; then
  read -r -a wanted <<<"${SCENARIOS//,/ }"
  known=("${ALL_SCENARIOS[@]}" "${PENDING_SCENARIOS[@]}")
  for w in "${wanted[@]}"; do
    [[ " ${known[*]} " == *" $w "* ]] || die "unknown scenario '$w' (known: ${known[*]})"
  done
  for s in "${known[@]}"; do
    [[ " ${wanted[*]} " == *" $s "* ]] && selected+=("$s")
  done
else
  selected=("${ALL_SCENARIOS[@]}")
fi
if [[ "${CI:-}" == "true" ]]; then
  skipped=()
  for s in "${ALL_SCENARIOS[@]}"; do
    [[ " ${selected[*]} " == *" $s "* ]] || skipped+=("$s")
  done
  (( ${#skipped[@]} == 0 )) \
    || die "CI=true runs every scenario, but SCENARIOS='${SCENARIOS:-}' would skip: ${skipped[*]}"
fi
for s in "${selected[@]}"; do
  [[ -f "$tests_dir/molecule/$s/molecule.yml" ]] || die "scenario '$s' has no tests/molecule/$s/molecule.yml"
done

names=(); results=(); seconds=()
current=""
child=""
record() { names+=("$1"); results+=("$2"); seconds+=("$3"); }
is_pending() { [[ " ${PENDING_SCENARIOS[*]} " == *" $1 "* ]]; }

# The closing table, the JSON artefact and the coverage verdict (scenario_report.py): every
# scenario of ALL_SCENARIOS that did not run is named, and under CI=true one that did not run
# fails the run.
report() {
  local i steps=() ci=()
  for i in "${!names[@]}"; do
    steps+=("${names[$i]}=${results[$i]}=${seconds[$i]}")
  done
  [[ "${CI:-}" == "true" ]] && ci=(--ci)
  python3 "$testbed_dir/scenario_report.py" --out "$artifacts/scenario-timings.json" \
    --all "${ALL_SCENARIOS[*]}" --pending "${PENDING_SCENARIOS[*]}" \
    --budget "${SCENARIO_BUDGET:-2700}" "${ci[@]}" -- "${steps[@]}"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$child" ]]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [[ -n "$current" ]]; then
    log "cleaning up after interrupted scenario $current"
    (cd "$tests_dir" && timeout 300 molecule destroy -s "$current") >/dev/null 2>&1 || true
  fi
  if docker info >/dev/null 2>&1; then
    # Only containers shared/create.yml labelled for the scenarios of THIS run.
    local s leftovers=()
    for s in "${selected[@]}"; do
      mapfile -t -O "${#leftovers[@]}" leftovers \
        < <(docker ps -aq --filter "label=org.instance-testbed.scenario=$s")
    done
    if (( ${#leftovers[@]} > 0 )); then
      log "removing ${#leftovers[@]} leftover test-bed container(s)"
      docker rm -f "${leftovers[@]}" >/dev/null 2>&1 || true
    fi
  fi
  if ! report && (( rc == 0 )); then
    rc=1
  fi
  echo "timings written to ${artifacts#"$repo_root"/}/scenario-timings.json"
  "$testbed_dir/stop-docker.sh" || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
"$testbed_dir/ensure-docker.sh"
record "(docker)" ok $((SECONDS - start))
start=$SECONDS
"$testbed_dir/build-image.sh" all
record "(base images)" ok $((SECONDS - start))

failed=0
cd "$tests_dir"   # molecule finds tests/molecule/<name>/ from here
for s in "${selected[@]}"; do
  echo "=== scenario: $s"
  current="$s"
  start=$SECONDS
  # In the background and waited for, so Ctrl-C/TERM reach the trap at once;
  # timeout puts molecule in its own process group and signals all of it.
  timeout --kill-after=60 "$scenario_timeout" molecule test -s "$s" \
    > >(tee "$artifacts/scenario-$s.log") 2>&1 &
  child=$!
  suffix=""
  is_pending "$s" && suffix="(pending)"
  if wait "$child"; then
    record "$s" "ok$suffix" $((SECONDS - start))
  else
    record "$s" "FAILED$suffix" $((SECONDS - start))
    failed=$((failed + 1))
    timeout 300 molecule destroy -s "$s" >/dev/null 2>&1 || true
  fi
  child=""
  current=""
  if (( failed > 0 )) && [[ "${FAIL_FAST:-0}" == "1" ]]; then
    break
  fi
done
if (( failed > 0 )); then
  log "$failed scenario(s) failed; logs in ${artifacts#"$repo_root"/}/scenario-<name>.log"
  exit 1
fi
