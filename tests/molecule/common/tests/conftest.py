"""Shared fixtures for the roles/common scenario: the instances and the probe."""

from __future__ import annotations

import os

import pytest
import testinfra

INSTANCES = ["hd-common-d12", "hd-common-d13"]
PROBE = "hd-common-probe"


def _host(name: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="module", params=INSTANCES)
def instance(request: pytest.FixtureRequest) -> testinfra.host.Host:
    return _host(request.param)


@pytest.fixture(scope="module")
def probe() -> testinfra.host.Host:
    return _host(PROBE)


@pytest.fixture(scope="module")
def instance_ip(instance: testinfra.host.Host) -> str:
    addresses = instance.interface("eth0").addresses
    ipv4 = [a for a in addresses if ":" not in a]
    assert ipv4, f"no IPv4 address on eth0: {addresses}"
    return ipv4[0]
