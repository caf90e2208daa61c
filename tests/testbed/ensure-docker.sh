#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Make a docker daemon available for the test bed (fresh Debian 12, run as root).
#  - installs docker.io and debootstrap from Debian's archive when missing;
#  - starts dockerd in the background only when no daemon answers, logging to
#    tests/testbed/.work/dockerd.log and recording its pid in
#    tests/testbed/.work/dockerd.pid, so stop-docker.sh stops only a daemon WE started.
# Idempotent: a second run with a daemon already answering changes nothing.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid_file="$work_dir/dockerd.pid"
daemon_log="$work_dir/dockerd.log"
start_timeout="${TESTBED_DOCKERD_TIMEOUT:-60}"

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if (( ${#missing[@]} > 0 )); then
  [[ $EUID -eq 0 ]] || die "need root to install: ${missing[*]}"
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing from Debian's archive: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  log "docker daemon answers"
  exit 0
fi

# A pid file from an earlier run whose daemon is gone is stale.
if [[ -f "$pid_file" ]] && ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  rm -f "$pid_file"
fi
if [[ ! -f "$pid_file" ]]; then
  [[ $EUID -eq 0 ]] || die "no docker daemon answers and starting one needs root"
  log "no docker daemon answers; starting dockerd (log: $daemon_log)"
  # setsid: the daemon must outlive this script and not get its signals.
  setsid dockerd >>"$daemon_log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
fi
if ! wait_for "$start_timeout" docker info; then
  tail -n 20 "$daemon_log" >&2 || true
  die "dockerd did not answer within ${start_timeout}s"
fi
log "dockerd (pid $(cat "$pid_file")) answers"
