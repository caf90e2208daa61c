"""Fixtures the site scenarios share (site-common's and site-options' conftest.py import them):
the container's name and bridge address, and a probe container on the same bridge."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "/nonexistent"))


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def container() -> str:
    molecule_yml = yaml.safe_load((SCENARIO_DIR / "molecule.yml").read_text())
    return str(molecule_yml["platforms"][0]["name"])


@pytest.fixture(scope="module")
def address(container: str) -> str:
    out = _run(["docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", container])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), f"{container} has no address on the default bridge"
    return out.stdout.strip()


@pytest.fixture(scope="module")
def probe(container: str) -> Iterator[str]:
    """A second container on the default bridge, the same test-bed shape, removed afterwards."""
    name = f"{container}-probe"
    image = os.environ.get("SITE_PROBE_IMAGE", "instance-testbed:debian12")
    _run(["docker", "rm", "-f", name])
    started = _run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--cgroupns",
            "host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            image,
        ]
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        _run(["docker", "rm", "-f", name])
