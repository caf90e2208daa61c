#!/usr/bin/env bash
# Build a bare git repository of the Mastodon STAND-IN with Mastodon-numbered release tags.
#
#   tests/standin/build-repo.sh [--debian 12|13] [--with-failing-tag vX.Y.Z] OUT_DIR
#
# Every release tag is one commit of tests/standin/app/ holding the migrations whose version
# is at or below that release's cut-off (see RELEASES below) and lib/mastodon/version.rb set to
# the tag. Commits use a fixed author and fixed dates, so the same input gives the same
# commit ids. --with-failing-tag adds one more tag whose migration raises (upgrade-rollback
# tests). --debian picks the package locks every tag carries: 12 (the default) keeps app/'s
# Gemfile.lock (resolved from Debian 12's gem packages) and Yarn 1 yarn.lock; 13 copies
# locks/debian13/ over it (Gemfile.lock resolved from Debian 13's gems, Yarn 4 yarn.lock and
# .yarnrc.yml, for Debian 13's yarnpkg). OUT_DIR must not exist yet.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
failing_tag=""
debian=12
while [[ $# -gt 0 ]]; do
  case "$1" in
    --debian) debian="${2:?--debian needs 12 or 13}"; shift 2 ;;
    --with-failing-tag) failing_tag="${2:?--with-failing-tag needs a tag like v4.5.2}"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
out="${1:?usage: build-repo.sh [--debian 12|13] [--with-failing-tag vX.Y.Z] OUT_DIR}"
if [[ -e "$out" ]]; then
  echo "refusing to overwrite existing $out" >&2
  exit 1
fi
if [[ -n "$failing_tag" && ! "$failing_tag" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "failing tag must look like vX.Y.Z, got: $failing_tag" >&2
  exit 2
fi

case "$debian" in
  12) overlay="" ;;
  13) overlay="$here/locks/debian13" ;;
  *) echo "--debian must be 12 or 13, got: $debian" >&2; exit 2 ;;
esac

# tag  highest-migration-version-included  commit-date
RELEASES=(
  "v4.3.0 20240930000000 2024-10-08T12:00:00Z"
  "v4.4.0 20250630000000 2025-07-08T12:00:00Z"
  "v4.5.0 20251031000000 2025-11-04T12:00:00Z"
  "v4.5.1 20251031000000 2025-11-20T12:00:00Z"
)

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

if [[ -n "$failing_tag" ]]; then
  write_version "$failing_tag"
  cat > db/migrate/20251201000000_standin_failing_migration.rb <<'RUBY'
# frozen_string_literal: true

# Stand-in migration that always fails: used by the upgrade/rollback tests.
class StandinFailingMigration < ActiveRecord::Migration[6.1]
  def up
    add_column :accounts, :standin_half_done, :boolean
    raise 'Stand-in failing migration: this release is broken on purpose'
  end

  def down; end
end
RUBY
  commit_release "$failing_tag" "2025-12-02T12:00:00Z"
fi

git clone -q --bare "$work/tree" "$out"
git -C "$out" for-each-ref --format='%(refname:short) %(objectname:short)' refs/tags
