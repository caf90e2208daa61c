#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Snapshots of converged instances (see snapshot_key.py for what makes a snapshot current).
#
#   snapshot.sh key PRODUCER              print the key the snapshot must carry now
#   snapshot.sh check PRODUCER            exit 0 when instance-testbed-snapshot:PRODUCER is current
#   snapshot.sh save PRODUCER CONTAINER   commit CONTAINER as the producer's snapshot (the
#                                         producer scenario's side_effect step calls this, after
#                                         converge and idempotence have passed, before verify)
#   snapshot.sh ensure PRODUCER           current already, or build it: the producer's create,
#                                         prepare, converge, idempotence and side_effect, then
#                                         destroy (run-scenarios.sh calls this before a consumer)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -x "$repo_root/.venv/bin/python" ]] && export PATH="$repo_root/.venv/bin:$PATH"

label_key=org.instance-testbed.snapshot-key
label_of=org.instance-testbed.snapshot-of

usage() { die "usage: snapshot.sh key|check|ensure PRODUCER, or snapshot.sh save PRODUCER CONTAINER"; }
(( $# >= 2 )) || usage
action="$1" producer="$2"
image="instance-testbed-snapshot:$producer"

key() { python3 "$testbed_dir/snapshot_key.py" "$producer"; }
have() { docker image inspect --format "{{ index .Config.Labels \"$label_key\" }}" "$image" 2>/dev/null || true; }

case "$action" in
  key) key ;;
  check)
    want="$(key)"
    got="$(have)"
    if [[ "$got" == "$want" ]]; then
      log "$image is current (key ${want:0:12})"
    elif [[ -z "$got" ]]; then
      log "$image does not exist"; exit 1
    else
      log "$image is stale (has ${got:0:12}, needs ${want:0:12})"; exit 1
    fi
    ;;
  save)
    (( $# == 3 )) || usage
    container="$3"
    want="$(key)"
    # --pause: the container is frozen while its file system is copied, so PostgreSQL's and
    # Redis' files are as consistent as after a power cut, which both recover from at start.
    docker commit --pause=true \
      --change "LABEL $label_key=$want" --change "LABEL $label_of=$producer" \
      "$container" "$image" >/dev/null
    # The previous snapshot of this producer lost its tag; nothing else may keep it.
    docker image prune --force --filter "label=$label_of=$producer" >/dev/null
    log "saved $container as $image (key ${want:0:12})"
    ;;
  ensure)
    exec 9>"$work_dir/snapshot-$producer.lock"
    flock 9
    if "$0" check "$producer"; then exit 0; fi
    log "building $image: molecule converge, idempotence and side_effect of $producer"
    cd "$repo_root/tests"
    status=0
    { molecule converge -s "$producer" && molecule idempotence -s "$producer" \
        && molecule side-effect -s "$producer"; } || status=$?
    molecule destroy -s "$producer" >/dev/null 2>&1 || true
    (( status == 0 )) || die "could not build $image (molecule exit $status)"
    "$0" check "$producer"
    ;;
  *) usage ;;
esac
