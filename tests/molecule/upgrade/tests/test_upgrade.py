"""Upgrades with a safety net: playbooks/upgrade.yml against the stand-in's releases.

The instance starts at v4.5.1 (the site-debian12 snapshot) with fixture data (prepare.yml) and
a local restic repository (converge). In file order these tests:
  1. show the probe through nginx fails while web is stopped (so it can see an outage);
  2. refuse, before anything changes, a skipped minor series without hops, too little memory
     and a backup that cannot be taken;
  3. upgrade v4.5.1 -> v4.6.1 -> v4.7.0 under the probe: 0 failed requests, every row intact,
     the migrations' data changes present, then upgrade.yml again and site.yml change nothing;
  4. roll back the failing-migration tag (v4.7.99) to v4.7.0 with the database kept, the
     failing post-deployment-migration tag (v4.7.98) with the database restored from the backup,
     and the breaking tag (v4.7.97: its pre-deployment migration breaks the old code, its web
     never starts) with the database restored once the old release fails its health gate.
Measurements go to tests/.artifacts/upgrade-measurements.json (tests/benchmarks/README.md).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))

from containers import docker_exec
from probing import latencies_in, p99, start_probe, stop_probe, web_restarts

from playbooks import REPO, failure_messages, run_playbook

HOST = "iu-upgrade-debian12"
WEB_DOMAIN = "social.example-university.edu"
RELEASES = "/home/mastodon/releases"
LIVE = "/home/mastodon/live"
FACT = "/etc/ansible/facts.d/mastodon.fact"
ARTIFACT = REPO / "tests" / ".artifacts" / "upgrade-measurements.json"


def sh(script: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker_exec(HOST, script, timeout=timeout, check=check)


def fact() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sh(f"cat {FACT}").stdout)
    return loaded


def server_state() -> dict[str, Any]:
    """What a refused upgrade must leave exactly as it was."""
    return {
        "live": sh(f"readlink {LIVE}").stdout.strip(),
        "releases": sorted(sh(f"ls {RELEASES}").stdout.split()),
        "fact": fact(),
        "schema": sh(
            "runuser -u postgres -- psql -XAtq -d mastodon_production"
            " -c 'SELECT max(version) FROM schema_migrations'"
        ).stdout.strip(),
    }


def served_version() -> str:
    out = sh(
        f"curl -fsS -H 'Host: {WEB_DOMAIN}' -H 'X-Forwarded-Proto: https'"
        " http://127.0.0.1:3000/api/v1/instance"
    ).stdout
    version: str = json.loads(out)["version"]
    return version


def data_summary() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(
        sh("/opt/testbed-fixtures/generate-data.sh --summary", timeout=600).stdout
    )
    return summary


def sql(query: str) -> str:
    return sh(
        f"runuser -u postgres -- psql -XAtq -F '|' -d mastodon_production -c {shlex.quote(query)}"
    ).stdout.strip()


def upgrade(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    return run_playbook("upgrade.yml", *args, timeout=1800)


def record(key: str, value: Any) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    current[key] = value
    ARTIFACT.write_text(json.dumps(current, indent=1, sort_keys=True))


def changed_count(doc: dict[str, Any] | None) -> int:
    assert doc is not None
    return sum(int(stats.get("changed", 0)) for stats in doc["stats"].values())


def test_the_probe_fails_while_web_is_stopped() -> None:
    out = start_probe(HOST, "probe-outage", WEB_DOMAIN)
    try:
        time.sleep(2)
        sh("systemctl stop mastodon-web.socket mastodon-web.service")
        time.sleep(3)
    finally:
        sh("systemctl start mastodon-web.socket mastodon-web.service")
    sh(
        "for i in $(seq 60); do curl -fsS -o /dev/null http://127.0.0.1:3000/health && exit 0;"
        " sleep 1; done; exit 1"
    )
    time.sleep(2)
    probe = stop_probe(HOST, "probe-outage", out)
    assert probe["requests"] >= 30, probe["requests"]
    assert probe["failed"] >= 10, "the probe did not see web stopped for three seconds"
    assert probe["samples"][-1][2] == "200", "the probe did not see web back"
    assert probe["samples"][0][2] == "200"


def test_a_skipped_minor_series_without_hops_is_refused_before_anything_changes() -> None:
    before = server_state()
    rc, doc, text = upgrade("-e", "mastodon_version=v4.7.0", "-e", "mastodon_upgrade_hops=false")
    assert rc != 0
    message = failure_messages(doc, text)
    assert "skips the series 4.6" in message, message
    assert "v4.6.1 then v4.7.0" in message, message
    assert server_state() == before


def test_too_little_memory_is_refused_with_the_numbers() -> None:
    before = server_state()
    rc, doc, text = upgrade(
        "-e", "mastodon_version=v4.6.1", "-e", "mastodon_upgrade_min_memory_mb=99000000"
    )
    assert rc != 0
    message = failure_messages(doc, text)
    assert "needs 99000000 MiB of RAM + swap" in message, message
    mem = int(sh("awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo").stdout)
    assert f"this server has {mem} MiB RAM" in message or f"has {mem - 1} MiB RAM" in message, (
        message
    )
    assert server_state() == before


def test_an_upgrade_without_a_verified_backup_is_refused() -> None:
    before = server_state()
    sh("mv /var/lib/upgrade-test-restic /var/lib/upgrade-test-restic.away")
    try:
        rc, doc, text = upgrade("-e", "mastodon_version=v4.6.1")
    finally:
        sh("mv /var/lib/upgrade-test-restic.away /var/lib/upgrade-test-restic")
    assert rc != 0
    message = failure_messages(doc, text)
    assert "backup" in message.lower(), message
    assert server_state() == before
    assert served_version() == "4.5.1"


def test_an_upgrade_across_two_minor_series_loses_no_request_and_no_row() -> None:
    before = data_summary()
    statuses = int(sql("SELECT count(*) FROM statuses"))
    began = time.time()
    out = start_probe(HOST, "probe-upgrade", WEB_DOMAIN)
    try:
        rc, doc, text = upgrade("-e", "mastodon_version=v4.7.0")
    finally:
        time.sleep(2)
        probe = stop_probe(HOST, "probe-upgrade", out)
    assert rc == 0, failure_messages(doc, text)[-3000:]
    duration = time.time() - began
    windows = web_restarts(HOST, began)
    in_switch = latencies_in(probe, windows)
    record(
        "upgrade",
        {
            "from": "v4.5.1",
            "to": "v4.7.0",
            "hops": ["v4.6.1", "v4.7.0"],
            "seconds": round(duration, 1),
            "probe_requests": probe["requests"],
            "probe_failed": probe["failed"],
            "probe_first_failures": probe["first_failures"],
            "p99_seconds_during_switch": p99(in_switch),
            "p99_seconds": probe["p99_seconds"],
            "web_restarts": len(windows),
        },
    )
    assert probe["failed"] == 0, probe["first_failures"]
    assert probe["requests"] >= 100
    assert len(windows) == 2, f"web restarted {len(windows)} times, expected once per hop"
    assert in_switch, "no probe request fell into a web restart"
    assert served_version() == "4.7.0"
    recorded = fact()
    assert recorded["release"] == "v4.7.0"
    assert recorded["previous_release"] == "v4.5.1"
    assert recorded["last_upgrade"]["result"] == "ok"
    assert recorded["last_upgrade"]["hops"] == ["v4.6.1", "v4.7.0"]
    assert sh(f"readlink {LIVE}").stdout.strip() == f"{RELEASES}/v4.7.0"
    assert sorted(sh(f"ls {RELEASES}").stdout.split()) == ["v4.5.1", "v4.7.0"]
    after = data_summary()
    assert after == before
    ran = dict(
        line.split("|")
        for line in sql(
            "SELECT version, rows_changed FROM standin_data_migrations ORDER BY version"
        ).splitlines()
    )
    assert sorted(ran) == ["20260301000000", "20260301000100", "20260901000000", "20260901000100"]
    assert int(ran["20260301000000"]) == statuses
    assert int(sql("SELECT count(*) FROM statuses WHERE words_count IS NULL")) == 0
    assert int(sql("SELECT count(*) FROM statuses WHERE standin_search_text IS NULL")) == 0


def test_a_second_upgrade_to_the_same_release_and_site_yml_change_nothing() -> None:
    rc, doc, text = upgrade("-e", "mastodon_version=v4.7.0")
    assert rc == 0, failure_messages(doc, text)[-3000:]
    assert changed_count(doc) == 0, text[-3000:]
    rc, doc, text = run_playbook("site.yml", "--tags", "mastodon", "-e", "mastodon_version=v4.7.0")
    assert rc == 0, failure_messages(doc, text)[-3000:]
    assert changed_count(doc) == 0, [name for name, result in _changed_tasks(doc)]


def _changed_tasks(doc: dict[str, Any] | None) -> list[tuple[str, Any]]:
    assert doc is not None
    out = []
    for play in doc["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("changed"):
                    out.append((task["task"]["name"], result.get("msg", "")))
    return out


def test_site_yml_refuses_to_move_the_server_to_another_release() -> None:
    rc, doc, text = run_playbook("site.yml", "--tags", "mastodon", "-e", "mastodon_version=v4.5.1")
    assert rc != 0
    message = failure_messages(doc, text)
    assert "The server runs v4.7.0 and mastodon_version asks for v4.5.1" in message, message


def rolled_back(name: str, *args: str, words: str) -> dict[str, Any]:
    """Run a failing upgrade from v4.7.0 and check what every rollback must leave: the play
    failed with a report naming the rollback and `words`, v4.7.0 linked, serving and recorded,
    every row and upload as before, the schema as before. Returns the report (last_upgrade)."""
    before = data_summary()
    schema = sql("SELECT max(version) FROM schema_migrations")
    began = time.time()
    rc, doc, text = upgrade(*args)
    assert rc != 0
    message = failure_messages(doc, text)
    assert "Rolled back to v4.7.0" in message, message
    assert words in message, message
    report: dict[str, Any] = fact()["last_upgrade"]
    record(
        name,
        {
            "seconds_total": round(time.time() - began, 1),
            "rollback_seconds": float(report["rollback_seconds"]),
            "database_restored": report["database_restored"],
            "writes_lost": int(report["writes_lost"]),
        },
    )
    assert report["result"] == "rolled back"
    assert float(report["rollback_seconds"]) > 0
    assert fact()["release"] == "v4.7.0"
    assert served_version() == "4.7.0"
    assert sh(f"readlink {LIVE}").stdout.strip() == f"{RELEASES}/v4.7.0"
    assert data_summary() == before
    assert sql("SELECT max(version) FROM schema_migrations") == schema
    return report


def test_a_failing_migration_rolls_back_to_the_old_release_with_nothing_lost() -> None:
    out = start_probe(HOST, "probe-rollback", WEB_DOMAIN)
    try:
        report = rolled_back(
            "rollback_failing_migration", "-e", "mastodon_version=v4.7.99",
            words="StandinFailingMigration",
        )  # fmt: skip
    finally:
        time.sleep(2)
        probe = stop_probe(HOST, "probe-rollback", out)
    # The rollback restarts web behind its socket too: no request fails.
    assert probe["failed"] == 0, probe["first_failures"]
    assert probe["requests"] >= 50
    assert report["failed_step"] == "pre-deployment migrations"
    assert "StandinFailingMigration" in report["failed_migration"]
    assert report["database_restored"] is False
    column = (
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'standin_half_done'"
    )
    assert sql(column) == "0"


def test_a_failing_post_deployment_migration_restores_the_database_from_the_backup() -> None:
    migrations = sql("SELECT count(*) FROM standin_data_migrations")
    report = rolled_back(
        "rollback_restoring_database", "-e", "mastodon_version=v4.7.98",
        words="restored from backup run",
    )  # fmt: skip
    assert report["failed_step"] == "post-deployment migrations"
    assert "StandinFailingPostMigration" in report["failed_migration"]
    assert report["database_restored"] is True
    # The good post-deployment migration of v4.7.98 had run and recorded itself: the restored
    # database no longer holds it.
    assert sql("SELECT count(*) FROM standin_data_migrations") == migrations


def test_a_pre_deployment_migration_the_old_release_cannot_use_gets_the_database_back() -> None:
    # A short gate: the release's web never answers, and each attempt waits 10 s in its socket.
    report = rolled_back(
        "rollback_breaking_schema", "-e", "mastodon_version=v4.7.97",
        "-e", "mastodon_upgrade_health_timeout=36", words="restored from backup run",
    )  # fmt: skip
    assert report["failed_step"] == "switch and restart"
    assert report["database_restored"] is True
    assert "failed its health gate on the schema" in report["database_restore_reason"]
    assert sql("SELECT to_regclass('public.standin_job_runs') IS NOT NULL") == "t"
