"""The database dump through restic 0.17+'s --stdin-from-command, on Debian 13's restic 0.18.

Debian 12's restic 0.14 has no --stdin-from-command, so the tool relays the dump itself there
(test_backup.py proves that path). From 0.17 on restic runs pg_dump itself and fails the snapshot
when the command fails. On ib-restic-debian13 (restic and PostgreSQL from Debian 13, a small
database written by prepare.yml) the tool's own backup_database, as installed by the role,
stores a dump that restores, reads the stored dump back for its checksum, and leaves no snapshot
behind when pg_dump fails half-way.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))

from containers import docker_exec

from playbooks import REPO

HOST = "ib-restic-debian13"
TOOL = REPO / "roles" / "backup" / "files" / "mastodon_backup.py"
REPOSITORY = "/var/backups/restic-current"
CFG = {
    "repository": REPOSITORY,
    "password_file": "/root/restic-password",
    "cache_dir": "/var/cache/restic-current",
    "sftp_command": "",
    "database": "restic_probe",
}
# A pg_dump that sends part of a real dump, then fails: first in PATH for runuser's command.
FAILING_PG_DUMP = """#!/bin/sh
/usr/bin/pg_dump "$@" | head -c 20000
exit 3
"""


def sh(script: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return docker_exec(HOST, script, timeout, check)


def restic(*args: str) -> str:
    base = ["restic", "--repo", REPOSITORY, "--password-file", CFG["password_file"]]
    return shlex.join([*base, "--cache-dir", CFG["cache_dir"], *args])


def dump_database() -> subprocess.CompletedProcess[str]:
    """backup_database of the installed tool, with the test's configuration; prints its result."""
    code = (
        "import json, mastodon_backup as mb; "
        f"cfg = json.loads({json.dumps(json.dumps(CFG))}); "
        "print(json.dumps(mb.backup_database(cfg, mb.Restic(cfg), ['run=probe'])))"
    )
    return sh(f"cd /opt/tool && python3 -c {shlex.quote(code)}", check=False)


def snapshot_ids() -> list[str]:
    return [s["id"] for s in json.loads(sh(restic("snapshots", "--json")).stdout or "[]")]


def test_restic_017_dump_restores_and_a_failed_dump_leaves_no_snapshot() -> None:
    version = sh("restic version").stdout
    assert version.startswith("restic 0.1") and int(version.split(".")[1]) >= 17, version
    copied = subprocess.run(
        ["docker", "cp", str(TOOL), f"{HOST}:/opt/mastodon_backup.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    sh("mkdir -p /opt/tool && mv /opt/mastodon_backup.py /opt/tool/mastodon_backup.py")
    sh(f"umask 077; head -c 24 /dev/urandom | base64 > {CFG['password_file']}")
    sh(f"rm -rf {REPOSITORY} && {restic('init')}")

    good = dump_database()
    assert good.returncode == 0, good.stderr
    result = json.loads(good.stdout)
    assert result["rows"] == {"statuses": 5000}
    # The checksum was read back from the stored dump; it is the dump restic hands out.
    stored = sh(restic("dump", result["snapshot"], "/database.dump") + " | sha256sum").stdout
    assert stored.split()[0] == result["sha256"] and result["bytes"] > 20000
    sh(
        f"{restic('dump', result['snapshot'], '/database.dump')} > /tmp/probe.dump && "
        "runuser -u postgres -- dropdb --if-exists probe_restored && "
        "runuser -u postgres -- createdb -T template0 probe_restored && "
        "runuser -u postgres -- pg_restore -d probe_restored /tmp/probe.dump"
    )
    count = "SELECT count(*) FROM statuses"
    rows = sh(f"runuser -u postgres -- psql -XAtq -d probe_restored -c {shlex.quote(count)}")
    assert rows.stdout.strip() == "5000"

    before = snapshot_ids()
    sh(
        f"printf %s {shlex.quote(FAILING_PG_DUMP)} > /usr/local/bin/pg_dump && "
        "chmod 0755 /usr/local/bin/pg_dump"
    )
    try:
        failed = dump_database()
    finally:
        sh("rm -f /usr/local/bin/pg_dump")
    assert failed.returncode != 0
    assert "database dump" in failed.stderr, failed.stderr
    # restic 0.18 failed the snapshot itself: nothing was added, the good one is untouched.
    assert snapshot_ids() == before
    sh(restic("check", "--read-data"))
