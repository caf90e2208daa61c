"""Host-side check run in every scenario's verify: no container of the scenario
is privileged or on the host network, and each has exactly the test-bed shape.

Scenarios include this file in molecule.yml with
    verifier:
      name: testinfra
      additional_files_or_dirs: [../../shared/tests/test_testbed_safety.py]
It reads `docker inspect` on the host, not inside the containers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

SCENARIO_LABEL = "org.instance-testbed.scenario"
ALLOWED_CAPS = {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "SYS_ADMIN", "NET_ADMIN"}


def _scenario() -> tuple[str, list[str]]:
    name = os.environ.get("MOLECULE_SCENARIO_NAME")
    directory = os.environ.get("MOLECULE_SCENARIO_DIRECTORY")
    if not name or not directory:
        pytest.fail("run this check through molecule verify (MOLECULE_* variables missing)")
    config = yaml.safe_load((Path(directory) / "molecule.yml").read_text(encoding="utf-8"))
    return name, [p["name"] for p in config["platforms"]]


def _docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def _inspect(names: list[str]) -> list[dict[str, Any]]:
    return list(json.loads(_docker("inspect", *names)))


@pytest.fixture(scope="module")
def containers() -> list[dict[str, Any]]:
    name, platforms = _scenario()
    labelled = _docker("ps", "-q", "--filter", f"label={SCENARIO_LABEL}={name}").split()
    found = _inspect(platforms)
    ids = {c["Id"] for c in found}
    extra = [cid for cid in labelled if not any(full.startswith(cid) for full in ids)]
    return found + (_inspect(extra) if extra else [])


def test_every_platform_is_running(containers: list[dict[str, Any]]) -> None:
    _, platforms = _scenario()
    running = {c["Name"].lstrip("/") for c in containers if c["State"]["Running"]}
    assert set(platforms) <= running


def test_no_container_is_privileged(containers: list[dict[str, Any]]) -> None:
    for c in containers:
        assert c["HostConfig"]["Privileged"] is False, c["Name"]


def test_no_container_uses_the_host_network(containers: list[dict[str, Any]]) -> None:
    for c in containers:
        assert c["HostConfig"]["NetworkMode"] in ("default", "bridge"), c["Name"]
        assert set(c["NetworkSettings"]["Networks"]) == {"bridge"}, c["Name"]


def test_no_container_shares_host_pid_ipc_or_userns(containers: list[dict[str, Any]]) -> None:
    for c in containers:
        hc = c["HostConfig"]
        assert hc.get("PidMode", "") in ("", "private"), c["Name"]
        assert hc.get("IpcMode", "") in ("", "private", "shareable"), c["Name"]
        assert hc.get("UsernsMode", "") == "", c["Name"]


def test_capabilities_are_exactly_the_test_bed_set(containers: list[dict[str, Any]]) -> None:
    for c in containers:
        added = set(c["HostConfig"].get("CapAdd") or [])
        assert added <= ALLOWED_CAPS, c["Name"]
        assert {cap.removeprefix("CAP_") for cap in added} == {"SYS_ADMIN", "NET_ADMIN"}
        assert not c["HostConfig"].get("Devices"), c["Name"]


def test_only_the_cgroup_tree_is_bind_mounted(containers: list[dict[str, Any]]) -> None:
    for c in containers:
        binds = [m for m in c["Mounts"] if m["Type"] == "bind"]
        assert [(m["Source"], m["Destination"]) for m in binds] == [
            ("/sys/fs/cgroup", "/sys/fs/cgroup")
        ], c["Name"]
