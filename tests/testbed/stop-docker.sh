#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stop the docker daemon ONLY if ensure-docker.sh started it (its pid file exists).
# A daemon started by anyone else (systemd, the CI image) is left alone. Idempotent.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid_file="$work_dir/dockerd.pid"
stop_timeout="${TESTBED_DOCKERD_TIMEOUT:-60}"

if [[ ! -f "$pid_file" ]]; then
  log "no dockerd started by the test bed; nothing to stop"
  exit 0
fi
pid="$(cat "$pid_file")"
if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
  log "stopping dockerd (pid $pid) started by the test bed"
  kill -TERM "$pid"
  if ! wait_for "$stop_timeout" bash -c "! kill -0 $pid"; then
    log "dockerd did not stop within ${stop_timeout}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -f "$pid_file"
