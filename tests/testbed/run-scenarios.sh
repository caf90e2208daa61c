#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run every molecule scenario of the container test bed:
#   1. ensure a docker daemon (ensure-docker.sh), 2. build/refresh the base
#   images (build-image.sh, cached), 3. `molecule test -s <name>` per scenario, in
#   SCENARIO_JOBS lanes: each lane takes the next scenario of the list when its last one ends.
# Prints a per-scenario timing table and the wall time against the budget, writes
# tests/.artifacts/scenario-timings.json, exits non-zero when any scenario fails. Each
# scenario's output goes to tests/.artifacts/scenario-<name>.log and is printed whole when
# the scenario ends (never interleaved with another's). On exit (also on failure or Ctrl-C)
# it destroys the containers of the scenarios it ran and stops a dockerd only if it started one.
#
# Environment:
#   SCENARIOS="bed other"   run only these (names from the lists below, in list order); a
#                           pending scenario runs only when named here, and its result is
#                           reported as pending, never as part of CI's pass
#   SCENARIO_JOBS=2         scenarios run at the same time (1 = one after another); every
#                           scenario has its own containers, so lanes share nothing but the
#                           daemon and the base images
#   SCENARIO_TIMEOUT=2700   seconds one scenario may take before it is killed
#   FAIL_FAST=1             start no further scenario after the first failure
#   SCENARIO_BUDGET=1320    wall seconds for the scenarios (issue 13: `make test` in 25 minutes, less about
#                           3 for lint and unit tests); the table says how the
#                           run compares (a number to watch, not a verdict)
#   CI=true                 (set by CI) refuse a SCENARIOS that skips one of ALL_SCENARIOS, and
#                           fail when any of ALL_SCENARIOS did not run
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The scenarios, in the order they start. Add yours with ONE line here. The bed's own check
# starts first (it is quick); then the longest first, so that the lanes end close together.
ALL_SCENARIOS=(
  bed
  site-debian12
  site-debian13
  backup
  upgrade
  nginx
  settings
)
# Scenarios that start from a snapshot of another scenario's converged instance (consumer=producer,
# see snapshot_key.py and snapshot.sh). A consumer starts only after its producer has ended in
# this run; when the producer failed, the consumer fails unrun; when the producer is not part of
# this run, snapshot.sh builds the snapshot first unless it is current.
declare -A SNAPSHOT_OF=(
  [settings]=site-debian12
  [backup]=site-debian12
  [upgrade]=site-debian12
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
scenario_timeout="${SCENARIO_TIMEOUT:-2700}"

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

jobs="${SCENARIO_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "SCENARIO_JOBS must be a whole number >= 1, got '$jobs'"

names=(); results=(); seconds=()
declare -A running=()   # pid -> scenario
declare -A started=()   # scenario -> SECONDS when it started
record() { names+=("$1"); results+=("$2"); seconds+=("$3"); }
is_pending() { [[ " ${PENDING_SCENARIOS[*]} " == *" $1 "* ]]; }

# The closing table, the JSON artefact and the coverage verdict (scenario_report.py): every
# scenario of ALL_SCENARIOS that did not run is named, and under CI=true one that did not run
# fails the run.
run_start=$SECONDS
report() {
  local i steps=() ci=()
  for i in "${!names[@]}"; do
    steps+=("${names[$i]}=${results[$i]}=${seconds[$i]}")
  done
  [[ "${CI:-}" == "true" ]] && ci=(--ci)
  python3 "$testbed_dir/scenario_report.py" --out "$artifacts/scenario-timings.json" \
    --all "${ALL_SCENARIOS[*]}" --pending "${PENDING_SCENARIOS[*]}" --jobs "$jobs" \
    --wall "$((SECONDS - run_start))" --budget "${SCENARIO_BUDGET:-1320}" "${ci[@]}" \
    -- "${steps[@]}"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid s
  for pid in "${!running[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${!running[@]}"; do
    wait "$pid" 2>/dev/null || true
    s="${running[$pid]}"
    log "cleaning up after interrupted scenario $s"
    (cd "$tests_dir" && timeout 300 molecule destroy -s "$s") >/dev/null 2>&1 || true
  done
  if docker info >/dev/null 2>&1; then
    # Only containers shared/create.yml labelled for the scenarios of THIS run.
    local leftovers=()
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

# Start scenario $1 in the background: timeout puts molecule in its own process group and
# signals all of it; the trap reaches the runner at once because it only waits. A consumer of a
# snapshot first makes sure the snapshot is current (quick when its producer just saved it).
launch() {
  local s="$1" producer="${SNAPSHOT_OF[$1]:-}"
  log "start: $s ($(( ${#running[@]} + 1 )) of at most $jobs running)"
  if [[ -n "$producer" ]]; then
    { "$testbed_dir/snapshot.sh" ensure "$producer" \
        && timeout --kill-after=60 "$scenario_timeout" molecule test -s "$s"; } \
      >"$artifacts/scenario-$s.log" 2>&1 &
  else
    timeout --kill-after=60 "$scenario_timeout" molecule test -s "$s" \
      >"$artifacts/scenario-$s.log" 2>&1 &
  fi
  running[$!]="$s"
  started[$s]=$SECONDS
}

# The first queued scenario that may start now: one whose producer (if any) is neither queued
# nor running. Prints its index in the queue; nothing when every queued one waits.
next_ready() {
  local i s producer pid busy
  for i in "${!queue[@]}"; do
    s="${queue[$i]}"
    producer="${SNAPSHOT_OF[$s]:-}"
    busy=0
    if [[ -n "$producer" ]]; then
      [[ " ${queue[*]} " == *" $producer "* ]] && busy=1
      for pid in "${!running[@]}"; do
        [[ "${running[$pid]}" == "$producer" ]] && busy=1
      done
    fi
    if (( busy == 0 )); then
      echo "$i"
      return
    fi
  done
}

# True when scenario $1 ran in this run and failed.
failed_here() {
  local i
  for i in "${!names[@]}"; do
    [[ "${names[$i]}" == "$1" && "${results[$i]}" == FAILED* ]] && return 0
  done
  return 1
}

# Wait for the next scenario to end, record it and print its log whole.
reap() {
  local pid status=0 s suffix=""
  wait -n -p pid "${!running[@]}" || status=$?
  s="${running[$pid]}"
  unset "running[$pid]"
  is_pending "$s" && suffix="(pending)"
  echo "=== scenario: $s (log: ${artifacts#"$repo_root"/}/scenario-$s.log)"
  cat "$artifacts/scenario-$s.log"
  if (( status == 0 )); then
    record "$s" "ok$suffix" $((SECONDS - started[$s]))
    log "ok: $s in $((SECONDS - started[$s])) s"
  else
    record "$s" "FAILED$suffix" $((SECONDS - started[$s]))
    log "FAILED: $s (exit $status) after $((SECONDS - started[$s])) s"
    failed=$((failed + 1))
    timeout 300 molecule destroy -s "$s" >/dev/null 2>&1 || true
  fi
}

queue=("${selected[@]}")
while :; do
  stop_starting=0
  (( failed > 0 )) && [[ "${FAIL_FAST:-0}" == "1" ]] && stop_starting=1
  if (( !stop_starting && ${#queue[@]} > 0 && ${#running[@]} < jobs )); then
    i="$(next_ready)"
    if [[ -n "$i" ]]; then
      s="${queue[$i]}"
      unset "queue[$i]"
      queue=("${queue[@]}")
      producer="${SNAPSHOT_OF[$s]:-}"
      if [[ -n "$producer" ]] && failed_here "$producer"; then
        log "FAILED: $s not run: it starts from the snapshot of $producer, which failed"
        record "$s" "FAILED" 0
        failed=$((failed + 1))
      else
        launch "$s"
      fi
      continue
    fi
  fi
  (( ${#running[@]} == 0 )) && break
  reap
done
if (( failed > 0 )); then
  log "$failed scenario(s) failed; logs in ${artifacts#"$repo_root"/}/scenario-<name>.log"
  exit 1
fi
