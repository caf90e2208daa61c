#!/usr/bin/env bash
# Static checks, each with zero tolerated violations.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
yamllint --strict .
if compgen -G "roles/*/tasks/main.yml" >/dev/null; then
  ansible-lint --profile production --strict
fi
