"""Fixtures of the site scenarios (tests/molecule/site-common/tests/test_site.py), shared here:
the container's name and bridge address, and a probe container on the same bridge."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "site-common" / "tests"))

from test_site import address, container, probe

__all__ = ["address", "container", "probe"]
