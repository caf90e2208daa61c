#!/usr/bin/env bash
# Build a bare git repository of the Mastodon STAND-IN with Mastodon-numbered release tags.
#
#   tests/standin/build-repo.sh [--debian 12|13] [--with-failing-post-tag vX.Y.Z]
#                               [--with-failing-tag vX.Y.Z] [--with-breaking-tag vX.Y.Z] OUT_DIR
#
# Every release tag (v4.3.0 v4.4.0 v4.5.0 v4.5.1 v4.6.0 v4.6.1 v4.7.0, see RELEASES below) is
# one commit of tests/standin/app/ on branch main holding the migrations (db/migrate,
# db/post_migrate) whose version is at or below that release's cut-off, with
# lib/mastodon/version.rb set to the tag. Commits use a fixed author and fixed dates, so the
# same input gives the same commit ids. For upgrade/rollback tests, two options add a tag on
# top of the last release (v4.7.0): each is a commit whose parent is v4.7.0, reachable only
# through its tag (main stays at v4.7.0), holding v4.7.0's tree plus tests/standin/failing/…:
#   --with-failing-post-tag TAG  failing/post/: a good pre-deployment migration, a good
#                                post-deployment migration, then StandinFailingPostMigration,
#                                which raises
#   --with-failing-tag TAG       failing/pre/: the pre-deployment StandinFailingMigration, which
#                                raises
#   --with-breaking-tag TAG      failing/breaking/: a pre-deployment migration that succeeds but
#                                renames a table the previous release's jobs write to, and a
#                                config/puma.rb that raises (the release's web never starts)
# Given several, they are committed post, pre, breaking. TAG must look like vX.Y.Z and be no release's
# tag (pick a number no real Mastodon release uses). --debian picks the package locks every
# tag carries: 12 (the default) keeps app/'s Gemfile.lock (resolved from Debian 12's gem
# packages) and Yarn 1 yarn.lock; 13 copies locks/debian13/ over it (Gemfile.lock resolved
# from Debian 13's gems, Yarn 4 yarn.lock and .yarnrc.yml, for Debian 13's yarnpkg).
# OUT_DIR must not exist yet.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
usage="usage: build-repo.sh [--debian 12|13] [--with-failing-post-tag vX.Y.Z] [--with-failing-tag vX.Y.Z] [--with-breaking-tag vX.Y.Z] OUT_DIR"
failing_tag=""
failing_post_tag=""
breaking_tag=""
debian=12
while [[ $# -gt 0 ]]; do
  case "$1" in
    --debian) debian="${2:?--debian needs 12 or 13}"; shift 2 ;;
    --with-failing-tag) failing_tag="${2:?--with-failing-tag needs a tag like v4.7.99}"; shift 2 ;;
    --with-breaking-tag) breaking_tag="${2:?--with-breaking-tag needs a tag like v4.7.97}"; shift 2 ;;
    --with-failing-post-tag)
      failing_post_tag="${2:?--with-failing-post-tag needs a tag like v4.7.98}"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
out="${1:?$usage}"
if [[ -e "$out" ]]; then
  echo "refusing to overwrite existing $out" >&2
  exit 1
fi

# tag  highest-migration-version-included  commit-date
RELEASES=(
  "v4.3.0 20240930000000 2024-10-08T12:00:00Z"
  "v4.4.0 20250630000000 2025-07-08T12:00:00Z"
  "v4.5.0 20251031000000 2025-11-04T12:00:00Z"
  "v4.5.1 20251031000000 2025-11-20T12:00:00Z"
  "v4.6.0 20260331000000 2026-04-07T12:00:00Z"
  "v4.6.1 20260331000000 2026-05-05T12:00:00Z"
  "v4.7.0 20260930000000 2026-10-06T12:00:00Z"
)
# Commit dates of the failing tags (--with-failing-post-tag, --with-failing-tag).
FAILING_POST_DATE="2026-11-03T12:00:00Z"
FAILING_PRE_DATE="2026-11-04T12:00:00Z"
BREAKING_DATE="2026-11-05T12:00:00Z"

release_tags=()
for release in "${RELEASES[@]}"; do release_tags+=("${release%% *}"); done
check_failing_tag() {  # $1 option, $2 tag
  [[ -n "$2" ]] || return 0
  if [[ ! "$2" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "$1: the tag must look like vX.Y.Z, got: $2" >&2
    exit 2
  fi
  local release
  for release in "${release_tags[@]}"; do
    if [[ "$2" == "$release" ]]; then
      echo "$1: $2 is a release tag of the stand-in; pick a number no release uses" >&2
      exit 2
    fi
  done
}
check_failing_tag --with-failing-tag "$failing_tag"
check_failing_tag --with-failing-post-tag "$failing_post_tag"
check_failing_tag --with-breaking-tag "$breaking_tag"
if [[ -n "$breaking_tag" && ( "$breaking_tag" == "$failing_tag" || "$breaking_tag" == "$failing_post_tag" ) ]]; then
  echo "--with-breaking-tag needs a tag of its own, got $breaking_tag twice" >&2
  exit 2
fi
if [[ -n "$failing_tag" && "$failing_tag" == "$failing_post_tag" ]]; then
  echo "--with-failing-tag and --with-failing-post-tag need two different tags, got $failing_tag twice" >&2
  exit 2
fi

case "$debian" in
  12) overlay="" ;;
  13) overlay="$here/locks/debian13" ;;
  *) echo "--debian must be 12 or 13, got: $debian" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME="Mastodon stand-in" GIT_AUTHOR_EMAIL="standin@example.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 TZ=UTC

git init -q -b main "$work/tree"
cd "$work/tree"

write_version() {  # $1 = vX.Y.Z
  local major minor patch
  IFS=. read -r major minor patch <<<"${1#v}"
  sed -i -e "s/^    MAJOR = .*/    MAJOR = ${major}/" -e "s/^    MINOR = .*/    MINOR = ${minor}/" \
    -e "s/^    PATCH = .*/    PATCH = ${patch}/" lib/mastodon/version.rb
}

commit_release() {  # $1 tag, $2 date
  git add -A .
  GIT_AUTHOR_DATE="$2" GIT_COMMITTER_DATE="$2" git commit -q --allow-empty -m "Release $1 (Mastodon stand-in)"
  GIT_COMMITTER_DATE="$2" git tag -a "$1" -m "Mastodon stand-in $1"
}

for release in "${RELEASES[@]}"; do
  read -r tag cutoff date <<<"$release"
  find . -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -a "$here/app/." .
  if [[ -n "$overlay" ]]; then cp -a "$overlay/." .; fi
  for migration in db/migrate/*.rb db/post_migrate/*.rb; do
    [[ -e "$migration" ]] || continue
    version="$(basename "$migration" | cut -d_ -f1)"
    if [[ "$version" > "$cutoff" ]]; then rm -f "$migration"; fi
  done
  write_version "$tag"
  commit_release "$tag" "$date"
done

# A failing tag: a commit whose parent is the last release (detached from main, which stays at
# that release), holding the last release's tree with the overlay's files added.
commit_failing() {  # $1 tag, $2 overlay directory, $3 date
  git checkout -q --detach "$last_release"
  cp -a "$2/." .
  write_version "$1"
  commit_release "$1" "$3"
}

last_release="${release_tags[-1]}"
if [[ -n "$failing_post_tag" ]]; then commit_failing "$failing_post_tag" "$here/failing/post" "$FAILING_POST_DATE"; fi
if [[ -n "$failing_tag" ]]; then commit_failing "$failing_tag" "$here/failing/pre" "$FAILING_PRE_DATE"; fi
if [[ -n "$breaking_tag" ]]; then commit_failing "$breaking_tag" "$here/failing/breaking" "$BREAKING_DATE"; fi
git checkout -q main

git clone -q --bare "$work/tree" "$out"
git -C "$out" for-each-ref --format='%(refname:short) %(objectname:short)' refs/tags
