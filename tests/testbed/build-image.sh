#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the systemd Debian base images of the test bed with debootstrap:
#   instance-testbed:debian12 (bookworm) and instance-testbed:debian13 (trixie).
# Usage: tests/testbed/build-image.sh [debian12|debian13|all]   (default: all)
#
# The image uses the HOST's apt sources (read by host_sources.py; no mirror address
# lives in this repository). It is cached: the image carries a label with the sha256
# of its recipe (this script, the files it uses, the host's sources), and it is
# rebuilt only when that hash changes. TESTBED_FORCE_BUILD=1 rebuilds regardless.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image_repo="instance-testbed"
label_key="org.instance-testbed.recipe-sha256"
# What every scenario needs on top of minbase: systemd as PID 1, python3 for
# Ansible (python3-apt for its apt module), sudo for become, iproute2 (ss) and
# procps (ps) for testinfra's socket and process checks.
packages="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps"

suite_of() {
  case "$1" in
    debian12) echo bookworm ;;
    debian13) echo trixie ;;
    *) die "unknown image '$1' (expected debian12, debian13 or all)" ;;
  esac
}

recipe_hash() {
  local suite="$1"
  {
    cat "$testbed_dir/build-image.sh" "$testbed_dir/lib.sh" "$testbed_dir/host_sources.py"
    echo "suite=$suite packages=$packages"
    python3 "$testbed_dir/host_sources.py" sources "$suite"
  } | sha256sum | cut -d' ' -f1
}

build_one() {
  local name="$1" suite tag want have rootfs mirror start
  suite="$(suite_of "$name")"
  tag="$image_repo:$name"
  want="$(recipe_hash "$suite")"
  have="$(docker image inspect --format "{{ index .Config.Labels \"$label_key\" }}" "$tag" 2>/dev/null || true)"
  if [[ "$have" == "$want" && "${TESTBED_FORCE_BUILD:-0}" != "1" ]]; then
    log "$tag is up to date (recipe ${want:0:12})"
    return 0
  fi
  start=$SECONDS
  log "building $tag from $suite (recipe ${want:0:12}, image had '${have:-no label}')"
  mirror="$(python3 "$testbed_dir/host_sources.py" mirror "$suite")"
  rootfs="$work_dir/rootfs-$name"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  # Clean up the half-built tree whatever happens.
  trap 'rm -rf "$rootfs"' RETURN

  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
      >"$work_dir/debootstrap-$name.log" 2>&1; then
    tail -n 30 "$work_dir/debootstrap-$name.log" >&2
    die "debootstrap of $suite failed (log: $work_dir/debootstrap-$name.log)"
  fi

  # Apt sources: the host's, re-targeted; drop debootstrap's one-line duplicate.
  rm -f "$rootfs/etc/apt/sources.list"
  python3 "$testbed_dir/host_sources.py" sources "$suite" >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # Each container gets its own machine id at boot.
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/var/lib/dbus/machine-id"
  # Test-only speed-up: dpkg skips fsync in throwaway containers.
  echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/testbed-unsafe-io"
  # Smaller image; scenarios refresh the package lists anyway.
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  mkdir -p "$rootfs/var/lib/apt/lists/partial"
  # An old mtime, so apt's cache_valid_time never mistakes the empty lists for fresh ones.
  touch -d '2000-01-01 00:00:00' "$rootfs/var/lib/apt/lists"

  # Importing moves the tag; the old image (if no other tag or container uses it)
  # becomes dangling and is left for `docker image prune`.
  tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=docker' \
    --change "LABEL $label_key=$want" \
    --change "LABEL org.instance-testbed.suite=$suite" \
    - "$tag" >/dev/null
  log "built $tag in $((SECONDS - start))s"
}

target="${1:-all}"
case "$target" in
  all) images=(debian12 debian13) ;;
  *) images=("$target") ;;
esac
command -v debootstrap >/dev/null || die "debootstrap missing: run tests/testbed/ensure-docker.sh first"
for image in "${images[@]}"; do
  build_one "$image"
done
