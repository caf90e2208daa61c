"""Fixtures the site scenarios share (site-common's and site-debian13's conftest.py import them):
the container's name and bridge address, a probe container on the same bridge and the probe with
an SSH client; and the variables a scenario deploys with (`deployed_vars`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))

from containers import docker_exec

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "/nonexistent"))
SCRATCH = Path(os.environ.get("SITE_TEST_DIR", "/nonexistent"))


def deployed_vars(scenario_dir: Path = SCENARIO_DIR) -> dict[str, Any]:
    """The variables a site scenario's converge uses, as written: the example institution's
    group_vars, then the host_vars molecule.yml links into the inventory (file-name order)."""
    values: dict[str, Any] = {}
    main = REPO / "inventories" / "example" / "group_vars" / "all" / "main.yml"
    values.update(yaml.safe_load(main.read_text()) or {})
    molecule = yaml.safe_load((scenario_dir / "molecule.yml").read_text())
    links = molecule.get("provisioner", {}).get("inventory", {}).get("links", {})
    host_vars = scenario_dir / links.get("host_vars", "host_vars")
    for path in sorted(host_vars.glob("**/*.yml")):
        values.update(yaml.safe_load(path.read_text()) or {})
    return values


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


@pytest.fixture(scope="module")
def ssh_probe(probe: str) -> Iterator[str]:
    """The probe with an SSH client, sshpass, ping and the run's admin key (/root/admin_ed25519)."""
    # The probe boots systemd, whose tmpfiles clean /tmp at boot: apt waits for the boot to end
    # and keeps its temporary files (gpgv's, for the signatures) out of /tmp; a failed attempt
    # is tried again, at most three in all.
    installed = docker_exec(
        probe,
        "for i in $(seq 120); do case $(systemctl is-system-running 2>/dev/null) in "
        "running|degraded) break;; esac; sleep 1; done; "
        "export TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive; "
        "for i in 1 2 3; do apt-get update -qq && apt-get install -y -qq "
        "--no-install-recommends openssh-client sshpass iputils-ping >/dev/null && exit 0; "
        "sleep 5; done; exit 1",
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    copied = _run(
        ["docker", "cp", str(SCRATCH / "ssh" / "id_ed25519"), f"{probe}:/root/admin_ed25519"]
    )
    assert copied.returncode == 0, copied.stderr
    keyed = docker_exec(probe, "chown root: /root/admin_ed25519 && chmod 0600 /root/admin_ed25519")
    assert keyed.returncode == 0, keyed.stderr
    yield probe
