#!/usr/bin/env bash
# Demo: deploy the committed example institution (inventories/example) into a local test
# container with playbooks/site.yml, then print its URL and the health status verified over HTTPS.
#
#   tests/demo/run.sh          (make demo)       bring it up; safe to run again
#   tests/demo/run.sh --down   (make demo-down)  remove the container and the demo's scratch files
#
# IT RUNS THE MASTODON STAND-IN (tests/standin/), NOT REAL MASTODON: real Mastodon, its gems and
# JavaScript packages cannot be downloaded here. The roles run unchanged; the test-only switches
# of tests/molecule/site-common/test-overrides.yml select Debian's Ruby/Node/Yarn, bundler without
# deployment mode, the stand-in's git repository and a local pebble ACME server instead of
# Let's Encrypt. The vault password is the example's TEST-ONLY one.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
container="${DEMO_CONTAINER:-mastodon-demo}"
image="${DEMO_IMAGE:-instance-testbed:debian12}"
scratch="$root/tests/.artifacts/demo-$container"
log() { printf '\n==> %s\n' "$*"; }

if [[ "${1:-}" == "--down" ]]; then
  docker rm -f "$container" >/dev/null 2>&1 && echo "removed container $container" || echo "no container $container"
  rm -rf "$scratch"  # with it the demo's deployment record (state/last-deploy.yml)
  if [[ -f "$root/tests/testbed/.work/dockerd.pid" ]]; then
    echo "the docker daemon the test bed started is still running; stop it with: tests/testbed/stop-docker.sh"
  fi
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--down]" >&2; exit 2; }

start=$SECONDS
log "Toolchain (.venv), docker and the Debian 12 test-bed image"
"$root/scripts/bootstrap.sh"
"$root/tests/testbed/ensure-docker.sh"
"$root/tests/testbed/build-image.sh" "${image##*:}"
export PATH="$root/.venv/bin:$PATH"

log "Container $container (default bridge network, not privileged)"
if [[ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null || true)" != "true" ]]; then
  docker rm -f "$container" >/dev/null 2>&1 || true
  docker run -d --name "$container" --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock "$image" >/dev/null
fi
state=""
for _ in $(seq 1 60); do  # systemd needs a moment before its bus answers; at most ~2 minutes
  state="$(docker exec "$container" timeout 120 systemctl is-system-running --wait 2>/dev/null || true)"
  [[ -n "$state" && "$state" != starting && "$state" != initializing ]] && break
  sleep 2
done
[[ "$state" == running || "$state" == degraded ]] || { echo "container did not boot ($state)" >&2; exit 1; }

mkdir -p "$scratch"
export DEMO_CONTAINER="$container"  # tests/demo/hosts-overlay.yml points the example's host at it
export ANSIBLE_CONFIG="$root/ansible.cfg"
export ANSIBLE_VAULT_PASSWORD_FILE="$root/examples/example-university.vault-pass"
export ANSIBLE_PIPELINING=True SITE_REPO_ROOT="$root" SITE_TEST_DIR="$scratch"
run_playbook() {
  # The demo's deployment record lives in its scratch directory, not in inventories/example/.
  ansible-playbook -i "$root/inventories/example" -i "$root/tests/demo/hosts-overlay.yml" \
    -e "@$root/tests/molecule/site-common/test-overrides.yml" -e "site_state_dir=$scratch/state" "$@"
}

log "Test-only preparation: pebble ACME server, stand-in repository, SSH key (tests/molecule/site-common/prepare.yml)"
run_playbook "$root/tests/molecule/site-common/prepare.yml" >"$scratch/prepare.log" 2>&1 \
  || { tail -n 40 "$scratch/prepare.log"; echo "prepare failed (log: $scratch/prepare.log)" >&2; exit 1; }

log "playbooks/site.yml -i inventories/example (log: $scratch/site.log)"
if ! run_playbook "$root/playbooks/site.yml" 2>&1 | tee "$scratch/site.log" | grep -E '^(PLAY|TASK) \[|^PLAY RECAP|^[a-z0-9-]+ +: ok='; then
  tail -n 40 "$scratch/site.log"; echo "site.yml failed (log: $scratch/site.log)" >&2; exit 1
fi
grep -q 'failed=0' "$scratch/site.log" || { echo "site.yml reported failures (log: $scratch/site.log)" >&2; exit 1; }

log "Health over HTTPS, from this machine, trusting only pebble's CA"
server_name="$(awk '/^nginx_server_name:/ {print $2}' "$root/inventories/example/group_vars/all/main.yml")"
address="$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$container")"
docker exec "$container" curl -sSk https://localhost:15000/roots/0 >"$scratch/pebble-root.pem"
# The status of $1 through nginx; an answer from nginx's cache (X-Cached HIT/STALE/...) is
# reported as such and does not count as healthy: the process behind it may be down.
health() {
  local out code cached
  out="$(curl -sS --max-time 20 -o /dev/null -D - -w '%{http_code}' --resolve "$server_name:443:$address" \
    --cacert "$scratch/pebble-root.pem" "https://$server_name$1")" || { echo "unreachable"; return; }
  code="${out##*$'\n'}"
  cached="$(printf '%s\n' "$out" | tr -d '\r' | awk -F': *' 'tolower($1) == "x-cached" {print toupper($2)}')"
  case "$cached" in
    HIT|STALE|UPDATING|REVALIDATED) echo "$code from nginx's cache (X-Cached: $cached)" ;;
    *) echo "$code" ;;
  esac
}
web="$(health /health)"
streaming="$(health /api/v1/streaming/health)"

cat <<TXT

Example University's server is up in container $container ($address), after $((SECONDS - start))s.
  URL:               https://$server_name/  (resolve it to $address, e.g.
                     curl --resolve $server_name:443:$address --cacert $scratch/pebble-root.pem https://$server_name/health)
  web /health:       HTTP $web
  streaming health:  HTTP $streaming
  certificate:       issued by the local pebble ACME test server (its CA: $scratch/pebble-root.pem)

This runs the MASTODON STAND-IN from tests/standin/, NOT real Mastodon. Toolchain switches used
(tests/molecule/site-common/test-overrides.yml): system Ruby, Debian Node.js and Yarn, bundler
without deployment mode, the stand-in's git repository, pebble instead of Let's Encrypt, no swap.
Remove it with: make demo-down
TXT
[[ "$web" == 200 && "$streaming" == 200 ]]
