"""`ansible-playbook --check --diff` reports drift and nothing else, and never repairs it.

Each host drifts in three ways an operator could cause (a hand edit of the rendered site, a
stopped nginx, a deleted bootstrap certificate): check mode names exactly the tasks that would
repair them (and the reload the changed site notifies), shows the hand edit in its diff, and
leaves the host as it found it. A real run repairs it, and the check run after it, on the
converged hosts, reports 0 changed and asks certbot for nothing. Each run drives both containers
at once; per-task results come from the ansible.posix.json callback (ansible-core 2.19 has no
json callback of its own). Runs after test_certificate_rerun.py and before
test_site.py/test_tls.py (alphabetical), and leaves the hosts converged whatever happens.
"""

from __future__ import annotations

import os

import testinfra
from conftest import INSTANCES, SERVER_NAME, run_converge, task_results

SITE = "/etc/nginx/sites-available/mastodon.conf"
BOOTSTRAP = f"/etc/nginx/tls/{SERVER_NAME}/bootstrap-ecdsa-fullchain.pem"
DRIFT_MARK = "# drift: edited by hand on the host"
SITE_TASK = "Create the Mastodon site (checked with nginx -t in a minimal http context first)"
BOOTSTRAP_TASK = (
    "Create the bootstrap self-signed certificates so nginx can start before the first issuance"
)
START_TASK = "Enable and start nginx"
# The handler the changed site notifies; in check mode it reports what it would do.
RELOAD_HANDLER = "Reload nginx"


def changed_tasks(document: dict[str, object], host_name: str) -> set[str]:
    return {name for name, _, result in task_results(document, host_name) if result.get("changed")}


def host_state(host: testinfra.host.Host) -> tuple[str, bool, bool]:
    """(sha256 of the site file, nginx active, bootstrap certificate present)."""
    return (
        host.check_output(f"sha256sum {SITE}").split()[0],
        host.service("nginx").is_running,
        host.file(BOOTSTRAP).exists,
    )


def result_of(document: dict[str, object], host_name: str, task: str) -> dict[str, object]:
    return next(r for n, _, r in task_results(document, host_name) if n == task)


def test_check_diff_names_exactly_the_drift_and_changes_nothing() -> None:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    hosts = {
        name: testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")
        for name in INSTANCES
    }
    drifted = {}
    for host in hosts.values():
        host.check_output(f"printf '%s\\n' '{DRIFT_MARK}' >> {SITE}")
        host.check_output("systemctl stop nginx")
        host.check_output(f"rm {BOOTSTRAP}")
    try:
        for name, host in hosts.items():
            drifted[name] = host_state(host)
            assert drifted[name][1:] == (False, False)

        document = run_converge(None, "--check", "--diff")
        for name, host in hosts.items():
            assert changed_tasks(document, name) == {
                SITE_TASK,
                START_TASK,
                BOOTSTRAP_TASK,
                RELOAD_HANDLER,
            }
            # The diff shows the hand edit going away.
            site = result_of(document, name, SITE_TASK)
            diffs = site["diff"] if isinstance(site["diff"], list) else [site["diff"]]
            assert any(DRIFT_MARK in d.get("before", "") for d in diffs), diffs
            assert not any(DRIFT_MARK in d.get("after", "") for d in diffs), diffs
            # Only the ecdsa bootstrap certificate would be recreated, not the rsa one.
            bootstrap = result_of(document, name, BOOTSTRAP_TASK)
            recreated = [r["item"]["item"] for r in bootstrap["results"] if r.get("changed")]
            assert recreated == ["ecdsa"]
            # Check mode touched nothing.
            assert host_state(host) == drifted[name]
            assert DRIFT_MARK in host.file(SITE).content_string
    finally:
        repaired = run_converge(None)
    for name, host in hosts.items():
        assert changed_tasks(repaired, name) >= {SITE_TASK, START_TASK, BOOTSTRAP_TASK}
        assert DRIFT_MARK not in host.file(SITE).content_string
        assert host.service("nginx").is_running
        assert host.file(BOOTSTRAP).exists

    # On the converged hosts (molecule's idempotence step showed a real run changes nothing)
    # check mode reports 0 changed as well, and asks certbot for nothing: both issued
    # certificates are valid for the wanted names.
    after = run_converge(None, "--check", "--diff")
    for name in INSTANCES:
        assert after["stats"][name]["changed"] == 0, changed_tasks(after, name)
        assert after["stats"][name]["failures"] == 0
        request = next(
            r for n, _, r in task_results(after, name) if n.startswith("Request certificates")
        )
        assert [r.get("skipped") for r in request["results"]] == [True, True]
