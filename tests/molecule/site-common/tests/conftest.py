"""Collection and shared fixtures of the site tests (test_site.py, test_hardening.py,
test_host_hardening.py).

A test marked `@pytest.mark.needs("acme")` or `needs("pgbouncer")` checks a feature that only some
site scenarios deploy. In a scenario that does not deploy it, the test is deselected at
collection, so it is reported as deselected, never as a skip beside the passes. What a scenario
deploys is read from the same variables its converge uses: the example institution's
group_vars, then the host_vars molecule.yml links into the inventory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from site_fixtures import address, container, deployed_vars, probe, ssh_probe

__all__ = ["address", "container", "probe", "ssh_probe"]


def deployed_features(values: dict[str, Any]) -> set[str]:
    features = set()
    if values.get("nginx_certificate_mode", "acme") == "acme":
        features.add("acme")
    if values.get("postgresql_pgbouncer_enabled") is True:
        features.add("pgbouncer")
    return features


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(feature): runs only where the scenario deploys it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    scenario = os.environ.get("MOLECULE_SCENARIO_DIRECTORY")
    if not scenario:
        return
    have = deployed_features(deployed_vars(Path(scenario)))
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("needs")
        (drop if marker and not set(marker.args) <= have else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
