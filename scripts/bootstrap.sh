#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv with the pinned toolchain.
# Idempotent: a venv whose lock stamp matches is reused as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
stamp="$venv/.lock-sha256"
want="$(cat "$root/requirements/dev.lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  echo "bootstrap: installing pinned Python toolchain into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$root/requirements/dev.lock" -e "$root[dev]"
  echo "$want" > "$stamp"
fi
