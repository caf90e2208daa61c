"""Fixtures for the roles/nginx scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra

INSTANCES = ["hd-nginx-d12", "hd-nginx-d13"]
SERVER_NAME = "social.example.test"


@pytest.fixture(scope="module", params=INSTANCES)
def instance(request: pytest.FixtureRequest) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{request.param}?ansible_inventory={inventory}")


@pytest.fixture(scope="module")
def instance_ip(instance: testinfra.host.Host) -> str:
    addresses = [a for a in instance.interface("eth0").addresses if ":" not in a]
    assert addresses, "no IPv4 address on eth0"
    return addresses[0]


@pytest.fixture(scope="module")
def sslyze_scan(instance_ip: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One sslyze scan per container, run from the host against the container's address."""
    out = tmp_path_factory.mktemp("sslyze") / "scan.json"
    sslyze = Path(sys.executable).parent / "sslyze"
    subprocess.run(
        [
            str(sslyze),
            "--sslv2",
            "--sslv3",
            "--tlsv1",
            "--tlsv1_1",
            "--tlsv1_2",
            "--tlsv1_3",
            "--http_headers",
            "--certinfo",
            f"--json_out={out}",
            f"{SERVER_NAME}:443{{{instance_ip}}}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    results = json.loads(out.read_text(encoding="utf-8"))["server_scan_results"]
    assert len(results) == 1
    assert results[0]["scan_status"] == "COMPLETED", results[0]
    scan: dict[str, Any] = results[0]["scan_result"]
    return scan


def curl(host: testinfra.host.Host, args: str) -> Any:
    """curl inside the container, resolving the site name to its own nginx."""
    return host.run(
        f"curl -sS --max-time 20 --resolve {SERVER_NAME}:443:127.0.0.1 "
        f"--resolve {SERVER_NAME}:80:127.0.0.1 {args}"
    )
