"""Benchmark: playbooks/upgrade.yml under a request probe, and its automatic rollback.

On one container started from the site-debian12 snapshot (the stand-in's v4.5.1 converged by
site.yml; tests/testbed/snapshot.sh ensure site-debian12), with the stand-in repository that has
the failing tags, fixture data (20 accounts, 3000 statuses, uploads) and backups set up into a
local restic repository, it measures in one run, with the probe of
tests/benchmarks/upgrade_probe.py asking nginx for /health every 100 ms throughout:

- the probe at rest for 20 s (the baseline latency);
- `upgrade.yml -e mastodon_version=v4.7.0` (v4.5.1 -> v4.6.1 -> v4.7.0, backup included):
  its duration, failed probe requests (goal 0), p99 latency of the requests that started while
  web restarted (up to 5 s after), side by side with the baseline's p99;
- `upgrade.yml -e mastodon_version=v4.7.99` (a pre-deployment migration fails): the rollback's
  duration as the playbook recorded it, and failed probe requests.

Prints one JSON object; exits 1 when a probe request failed. The container (db-bench-upgrade) is
removed afterwards, also on failure.

    .venv/bin/python tests/benchmarks/bench_upgrade.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "shared" / "tests"))

from bench_site_converge import REPO, docker, playbook_env, prepare_scratch, start_container
from probing import latencies_in, p99, start_probe, stop_probe, web_restarts

CONTAINER = "db-bench-upgrade"
IMAGE = "instance-testbed-snapshot:site-debian12"
HOST = "social.example-university.edu"
REPOSITORY = "/var/backups/restic-bench"


def sh(script: str, timeout: float = 1800) -> str:
    return docker("exec", CONTAINER, "bash", "-c", script, timeout=timeout)


def upgrade_argv(scratch: Path, version: str) -> list[str]:
    return [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i", str(REPO / "inventories/example"), "-i", str(scratch / "hosts-overlay.yml"),
        "-e", f"@{REPO / 'tests/molecule/site-common/test-overrides.yml'}",
        "-e", f"backup_restic_repository={REPOSITORY}", "-e", "backup_drill_enabled=false",
        "-e", f"mastodon_release_facts_file={REPO / 'tests/standin/releases.yml'}",
        "-e", f"mastodon_version={version}",
        str(REPO / "playbooks/upgrade.yml"),
    ]  # fmt: skip


def run(argv: list[str], scratch: Path, log: Path) -> tuple[int, float]:
    start = time.monotonic()
    with log.open("w") as handle:
        done = subprocess.run(
            argv, cwd=REPO, env=playbook_env(scratch), stdout=handle, stderr=subprocess.STDOUT,
            timeout=3600, check=False,
        )  # fmt: skip
    return done.returncode, time.monotonic() - start


def prepare(scratch: Path) -> None:
    """The repository with the failing tags, fixture data, and the backup role."""
    repo = scratch / "mastodon.git"
    subprocess.run(
        [str(REPO / "tests/standin/build-repo.sh"), "--debian", "12",
         "--with-failing-post-tag", "v4.7.98", "--with-failing-tag", "v4.7.99", str(repo)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    sh("rm -rf /opt/testbed-standin/mastodon.git")
    docker("cp", str(repo), f"{CONTAINER}:/opt/testbed-standin/mastodon.git")
    docker("cp", str(REPO / "tests/fixtures"), f"{CONTAINER}:/opt/testbed-fixtures")
    sh("/opt/testbed-fixtures/generate-data.sh --accounts 20 --statuses 3000 --media-mb 4")
    argv = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i", str(REPO / "inventories/example"), "-i", str(scratch / "hosts-overlay.yml"),
        "-e", f"@{REPO / 'tests/molecule/site-common/test-overrides.yml'}",
        "-e", f"backup_restic_repository={REPOSITORY}", "-e", "backup_drill_enabled=false",
        "--skip-tags", "backup-now", str(REPO / "playbooks/backup.yml"),
    ]  # fmt: skip
    rc, _ = run(argv, scratch, scratch / "backup.log")
    if rc != 0:
        raise SystemExit(f"backup.yml failed: {(scratch / 'backup.log').read_text()[-3000:]}")


def main() -> int:
    start_container(IMAGE, CONTAINER)
    try:
        sh("for i in $(seq 90); do curl -sf http://127.0.0.1:3000/health && exit 0; sleep 2; done")
        scratch = prepare_scratch("bench-upgrade-", CONTAINER, "community.docker.docker")
        prepare(scratch)
        out = start_probe(CONTAINER, "probe-rest", HOST)
        time.sleep(20)
        rest = stop_probe(CONTAINER, "probe-rest", out)

        began = time.time()
        out = start_probe(CONTAINER, "probe-upgrade", HOST)
        rc, upgrade_s = run(upgrade_argv(scratch, "v4.7.0"), scratch, scratch / "upgrade.log")
        time.sleep(2)
        during = stop_probe(CONTAINER, "probe-upgrade", out)
        if rc != 0:
            raise SystemExit(f"upgrade.yml failed: {(scratch / 'upgrade.log').read_text()[-3000:]}")
        switch = latencies_in(during, web_restarts(CONTAINER, began))

        out = start_probe(CONTAINER, "probe-rollback", HOST)
        rc, failing_s = run(upgrade_argv(scratch, "v4.7.99"), scratch, scratch / "rollback.log")
        time.sleep(2)
        rolled = stop_probe(CONTAINER, "probe-rollback", out)
        report = json.loads(sh("cat /etc/ansible/facts.d/mastodon.fact"))["last_upgrade"]
        if rc == 0 or report.get("result") != "rolled back":
            raise SystemExit("the failing tag did not roll back: see " + str(scratch))
        rest_p99 = p99([float(s[1]) for s in rest["samples"]]) or 0.0
        switch_p99 = p99(switch)
        result = {
            "benchmark": "upgrade",
            "path": "v4.5.1 -> v4.6.1 -> v4.7.0 (stand-in), then v4.7.99 rolled back",
            "upgrade_s": round(upgrade_s, 1),
            "upgrade_probe_requests": during["requests"],
            "upgrade_probe_failed": during["failed"],
            "probe_p99_at_rest_s": rest_p99,
            "probe_p99_during_switch_s": switch_p99,
            "switch_p99_over_rest_p99": round(switch_p99 / rest_p99, 1)
            if switch_p99 and rest_p99
            else None,
            "failing_upgrade_s": round(failing_s, 1),
            "rollback_s": float(report["rollback_seconds"]),
            "rollback_probe_failed": rolled["failed"],
            "probe_failed_goal": 0,
        }
        print(json.dumps(result, indent=2))
        return 0 if during["failed"] == 0 and rolled["failed"] == 0 else 1
    finally:
        docker("rm", "-f", CONTAINER, check=False)


if __name__ == "__main__":
    sys.exit(main())
