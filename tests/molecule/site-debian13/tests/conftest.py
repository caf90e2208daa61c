"""Fixtures of the site scenarios (tests/molecule/site-common/tests/site_fixtures.py), shared here:
the container's name and bridge address, a probe container on the same bridge, and the probe
with an SSH client."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "site-common" / "tests"))

from site_fixtures import address, container, probe, ssh_probe

__all__ = ["address", "container", "probe", "ssh_probe"]
