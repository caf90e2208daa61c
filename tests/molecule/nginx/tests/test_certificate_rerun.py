"""Re-runs of the role: certificate state is read once, and only what differs is changed.

These tests run the scenario's converge playbook again (once in check mode, once after breaking
the host on purpose) and read the per-task results from the ansible.posix.json callback. They run
before test_site.py and test_tls.py (alphabetical order), which then check the repaired host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra
from conftest import INSTANCES, SERVER_NAME

TLS_DIR = f"/etc/nginx/tls/{SERVER_NAME}"
LIVE_DIR = f"/etc/letsencrypt/live/{SERVER_NAME}"
HOOK = "/etc/letsencrypt/renewal-hooks/deploy/50-reload-nginx"
SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[2]
CERTIFICATE_TASK_FILES = ("roles/nginx/tasks/certificates.yml", "roles/nginx/tasks/acme.yml")


def run_converge(host_name: str, *extra: str) -> dict[str, Any]:
    """Run converge.yml on one container; return the json callback's document."""
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
            "--limit",
            host_name,
            *extra,
            str(SCENARIO / "converge.yml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
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


@pytest.fixture(scope="module", params=INSTANCES)
def named_instance(request: pytest.FixtureRequest) -> tuple[str, testinfra.host.Host]:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    host = testinfra.get_host(f"ansible://{request.param}?ansible_inventory={inventory}")
    return request.param, host


def test_converged_check_run_changes_nothing_and_reads_certificates_once(
    named_instance: tuple[str, testinfra.host.Host],
) -> None:
    host_name, _ = named_instance
    document = run_converge(host_name, "--check")
    stats = document["stats"][host_name]
    assert stats["changed"] == 0, stats
    assert stats["failures"] == 0, stats
    # Of all certificate tasks only the state read touched the host; the rest were skipped.
    ran = [
        name
        for name, path, result in task_results(document, host_name)
        if path.split(":")[0].endswith(CERTIFICATE_TASK_FILES)
        and not result.get("skipped")
        # flush_handlers runs on the controller only.
        and name != "Serve the ACME challenge before asking for a certificate"
    ]
    assert ran == [
        "Read the certificate state (bootstrap and issued certificates, links, deploy hook, timer)"
    ]


def test_rerun_repairs_exactly_what_differs(
    named_instance: tuple[str, testinfra.host.Host],
) -> None:
    host_name, host = named_instance
    # Break three things: a lost certificate, a hook with the wrong mode, a stopped timer.
    host.check_output(f"certbot delete --non-interactive --cert-name {SERVER_NAME}-rsa")
    host.check_output(f"chmod 0644 {HOOK}")
    host.check_output("systemctl disable --now certbot.timer")

    document = run_converge(host_name)
    changed = {
        name for name, _, result in task_results(document, host_name) if result.get("changed")
    }
    assert changed == {
        # The rsa links fall back to the bootstrap certificate, certbot issues a new one and the
        # links follow it in the same run.
        "Link the site certificates to the issued ones, or to the bootstrap ones until issuance",
        "Request certificates that are missing, expire within a day or are for other names",
        "Point nginx at the certificates issued just now",
        "Reload nginx after every renewal",
        "Enable certbot's renewal timer",
        "Reload nginx",
    }
    # Only the rsa certificate was requested; the ecdsa one was still valid for the same names.
    requests = next(
        result
        for name, _, result in task_results(document, host_name)
        if name.startswith("Request certificates")
    )
    requested = [r["item"] for r in requests["results"] if r.get("changed")]
    assert requested == ["rsa"]

    for part in ("fullchain", "privkey"):
        link = host.file(f"{TLS_DIR}/rsa-{part}.pem")
        assert link.is_symlink
        assert host.check_output(f"readlink {TLS_DIR}/rsa-{part}.pem") == (
            f"{LIVE_DIR}-rsa/{part}.pem"
        )
    assert host.file(f"{LIVE_DIR}-rsa/fullchain.pem").exists
    assert host.file(HOOK).mode == 0o755
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running
    # nginx serves the new rsa certificate (same serial as on disk) to an RSA-only client.
    on_disk = host.check_output(f"openssl x509 -noout -serial -in {LIVE_DIR}-rsa/cert.pem")
    served = host.check_output(
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} -tls1_2 "
        "-cipher ECDHE-RSA-AES128-GCM-SHA256 </dev/null 2>/dev/null | openssl x509 -noout -serial"
    )
    assert served == on_disk
