#!/usr/bin/env bash
# Debian's chromium for the documentation screenshots (tests/unit/test_docs_site.py), installed
# from Debian's archive when missing (run as root). Idempotent and quick when it is present.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "chromium is missing and installing it needs root: apt-get install chromium" >&2
  exit 1
fi
echo "installing chromium from Debian's archive (documentation screenshots)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
