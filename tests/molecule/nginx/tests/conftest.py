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
SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[2]


@pytest.fixture(scope="module", params=INSTANCES)
def instance(request: pytest.FixtureRequest) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{request.param}?ansible_inventory={inventory}")


@pytest.fixture(scope="module", params=INSTANCES)
def named_instance(request: pytest.FixtureRequest) -> tuple[str, testinfra.host.Host]:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    host = testinfra.get_host(f"ansible://{request.param}?ansible_inventory={inventory}")
    return request.param, host


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


def run_converge(host_name: str | None, *extra: str) -> dict[str, Any]:
    """Run converge.yml on one container (None: on all of them, in parallel); return the json
    callback's document."""
    env = dict(os.environ)
    # Molecule's provisioner settings (molecule.yml), in case the verifier's environment lacks them.
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    env.setdefault("ANSIBLE_ROLES_PATH", str(REPO / "roles"))
    # Only the json callback: profile_tasks (ansible.cfg) would print between its lines.
    env.update(
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            *(["--limit", host_name] if host_name else []),
            *extra,
            str(SCENARIO / "converge.yml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        # Generous for a loaded 2-core machine, where one converge of both containers has
        # taken over 5 minutes; still bounded.
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    document: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return document


def task_results(document: dict[str, Any], host_name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(task name without role prefix, task file path, result) for every task the host ran."""
    rows = []
    for play in document["plays"]:
        for task in play["tasks"]:
            if host_name in task["hosts"]:
                name = task["task"]["name"].split(" : ", 1)[-1]
                rows.append((name, task["task"].get("path", ""), task["hosts"][host_name]))
    return rows
