"""`site.yml` is safe to re-run after a run that was killed.

prepare.yml ran ../interrupted_converge.py: three runs of site.yml on this container, each
SIGKILLed (the controller's process group and every process Ansible had started in the
container) at one point: during the apt transaction, during the database migrations, during
the nginx role's certificate step. Molecule's converge then ran site.yml to the end and
idempotence found 0 changed. These tests read the script's record
(tests/.artifacts/interrupted-converge-site-debian13.json) to prove each kill really happened at
its point, and the container to prove that what was written before the kills is intact and
nothing half done is left behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import test_site as site  # conftest.py puts site-common/tests on the path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interrupted_converge import (  # the in-container lock check the driver uses too
    DEPLOYED,
    HELD,
)

ARTIFACT = site.REPO / "tests" / ".artifacts" / "interrupted-converge-site-debian13.json"
POINTS = ["apt", "migrations", "certificate"]
TLS_DIR = f"/etc/nginx/tls/{site.SERVER_NAME}"
CHAIN = f"{TLS_DIR}/provided-fullchain.pem"
KEY = f"{TLS_DIR}/provided-privkey.pem"
SITE_FILE = "/etc/nginx/sites-available/mastodon.conf"
DATABASE = site.MAIN_VARS["postgresql_mastodon_database"]
STANDIN_DB = site.REPO / "tests" / "standin" / "app" / "db"
# The deployed release's cut-off in the stand-in's build script ("TAG CUT-OFF DATE" lines).
CUT_OFF = next(
    line.split()[1]
    for line in re.findall(
        r'"(v\d+\.\d+\.\d+ \d+ \S+)"', site.REPO.joinpath("tests/standin/build-repo.sh").read_text()
    )
    if line.split()[0] == DEPLOYED
)
# Every migration of that release, by version (the file names start with the version).
ALL_VERSIONS = sorted(
    version
    for d in ("migrate", "post_migrate")
    for p in (STANDIN_DB / d).glob("*.rb")
    if (version := p.name.split("_", 1)[0]) <= CUT_OFF
)
LOCK_FILES = [
    "/var/lib/dpkg/lock",
    "/var/lib/dpkg/lock-frontend",
    "/var/cache/apt/archives/lock",
    "/var/lib/apt/lists/lock",
]


@pytest.fixture(scope="module")
def record(container: str) -> dict[str, Any]:
    assert ARTIFACT.is_file(), (
        f"{ARTIFACT} is missing: prepare.yml did not run the interrupted converges"
    )
    data: dict[str, Any] = json.loads(ARTIFACT.read_text())
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", container],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert data["container_id"] == out.stdout.strip(), "the record is of another container (stale)"
    return data


def _kill_problems(kill: dict[str, Any]) -> list[str]:
    """Why a recorded kill did not happen at its point (empty when it did)."""
    problems = []
    if kill.get("missed", True):
        return [f"{kill.get('point')}: the run ended before the watcher saw its point"]
    if kill.get("controller_rc") != -9:
        problems.append(f"controller ended with {kill.get('controller_rc')}, not SIGKILL")
    # dpkg and rails are running at their points by definition; the certificate point is a
    # state of files (the chain written, the site not yet), which Ansible may reach between
    # two module runs, when nothing of it runs in the container and only the controller dies.
    if kill.get("point") != "certificate" and not kill.get("killed"):
        problems.append("no process was killed inside the container")
    if kill.get("left"):
        problems.append(f"processes survived the kill: {kill['left']}")
    hit, after = kill.get("hit", {}), kill.get("after", {})
    process = hit.get("process") or ""
    if kill["point"] == "apt":
        if not process.startswith("/usr/bin/dpkg ") or not {"--unpack", "--configure"} & set(
            process.split()
        ):
            problems.append(f"no dpkg transaction was running: {process!r}")
        if not (after.get("dpkg_audit") or after.get("dpkg_journal")):
            problems.append("dpkg was not left interrupted")
    elif kill["point"] == "migrations":
        if "bin/rails" not in process or not ("db:setup" in process or "db:migrate" in process):
            problems.append(f"no migration was running: {process!r}")
        versions = after.get("schema_versions") or []
        if not versions or versions == ALL_VERSIONS:
            problems.append(f"not between two migrations: versions {versions}")
        if not after.get("env_sha256"):
            problems.append(".env.production was not written before the kill")
    elif kill["point"] == "certificate":
        files = after.get("files", {})
        if not files.get(CHAIN) or files.get(SITE_FILE):
            problems.append(f"not inside the certificate step: {files}")
    else:
        problems.append(f"unknown point {kill['point']!r}")
    return problems


def test_each_kill_happened_at_its_point(record: dict[str, Any]) -> None:
    kills = record["kills"]
    assert [k["point"] for k in kills] == POINTS
    for kill in kills:
        assert _kill_problems(kill) == [], kill["point"]
    # The check can fail: a run that finished before its point, or a kill recorded at another
    # point, is refused.
    assert _kill_problems({**kills[0], "missed": True})
    assert _kill_problems(
        {**kills[1], "after": {**kills[1]["after"], "schema_versions": ALL_VERSIONS}}
    )
    assert _kill_problems({**kills[2], "after": {"files": {CHAIN: True, SITE_FILE: True}}})
    assert _kill_problems({**kills[1], "killed": []}), "a migrations kill that killed nothing"
    assert _kill_problems({**kills[2], "controller_rc": 0}), "a controller that was not killed"


def _sha256(host: Any, path: str) -> str:
    out = host.run("sha256sum %s", path)
    assert out.rc == 0, out.stderr
    return str(out.stdout.split()[0])


def test_secrets_written_before_the_kills_are_kept(host: Any, record: dict[str, Any]) -> None:
    # .env.production holds the vault's secrets: rewritten or regenerated, its hash would differ.
    written = [k["after"]["env_sha256"] for k in record["kills"] if k["after"]["env_sha256"]]
    assert len(written) == 2, (
        "written before the migrations kill and still there at the certificate kill"
    )
    assert set(written) == {_sha256(host, site.ENV_FILE)}


def _psql(host: Any, query: str) -> list[str]:
    out = host.run("runuser -u postgres -- psql -X -At -d %s -c %s", DATABASE, query)
    assert out.rc == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_rows_written_before_the_migrations_kill_are_kept_and_setup_finished(
    host: Any, record: dict[str, Any]
) -> None:
    before = record["kills"][1]["after"]["schema_versions"]
    now = _psql(host, "SELECT version FROM schema_migrations ORDER BY version")
    assert set(before) <= set(now)
    assert now == ALL_VERSIONS
    # The seeds of the interrupted db:setup ran on a later run: the built-in roles exist.
    roles = set(_psql(host, "SELECT name FROM user_roles"))
    assert {"Moderator", "Admin", "Owner"} <= roles


LEFTOVERS = (
    HELD
    + r"""
import fcntl, glob, json, os
temp = []
for top in ('/etc', '/home/mastodon', '/usr/local', '/var/lib'):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ('node_modules', '.git')]
        temp += [os.path.join(root, f) for f in files if f.startswith('.ansible_tmp')]
print(json.dumps({
    'held': [l for l in %r if held(l)],
    'temp': temp,
    # What Ansible had sent over (a template's rendered text, a key) and not moved into place.
    'ansible_tmp_files': [os.path.join(r, f)
                          for d in glob.glob('/root/.ansible/tmp/ansible-tmp-*')
                                   + glob.glob('/home/*/.ansible/tmp/ansible-tmp-*')
                          for r, _, fs in os.walk(d) for f in fs],
    'knob': os.path.exists('/run/testbed-standin'),
}))
"""
)


def test_no_lock_or_half_written_file_is_left(host: Any, record: dict[str, Any]) -> None:
    audit = host.run("dpkg --audit")
    assert audit.rc == 0 and audit.stdout.strip() == "", audit.stdout
    # dpkg's journal (updates/NNNN; its scratch file tmp.i it overwrites itself) is merged.
    assert [n for n in host.file("/var/lib/dpkg/updates").listdir() if n.isdigit()] == []
    out = host.run("python3 -c %s", LEFTOVERS % LOCK_FILES)
    assert out.rc == 0, out.stderr
    left = json.loads(out.stdout)
    assert left["held"] == [], "dpkg/apt locks still held"
    assert left["temp"] == [], "files Ansible was writing when it was killed"
    assert left["ansible_tmp_files"] == [], "files in a killed run's remote temporary directories"
    assert left["knob"] is False, "the test-only migration pause is gone"
    # No migration lock: ActiveRecord's advisory lock died with the killed connection.
    assert _psql(host, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == ["0"]
    # The nginx site and the certificate pair are whole: nginx accepts them, the key is the
    # certificate's.
    assert host.run("nginx -t").rc == 0
    assert host.file("/etc/nginx/sites-enabled/mastodon.conf").linked_to == SITE_FILE
    chain = host.run("openssl x509 -noout -pubkey -in %s", CHAIN)
    key = host.run("openssl pkey -pubout -in %s", KEY)
    assert chain.rc == 0 and key.rc == 0
    assert chain.stdout == key.stdout


SERVICE_FILES = r"""
set -eu
units="nginx.service pgbouncer.service redis-server.service $(systemctl list-units --plain \
  --no-legend --state=active 'postgresql@*.service' 'mastodon-*.service' | cut -d' ' -f1)"
for unit in $units; do
  files="$(systemctl show -P FragmentPath "$unit") $(systemctl show -P DropInPaths "$unit")"
  newest=$(stat -c %Y $files | sort -n | tail -1)
  started=$(systemctl show -P ExecMainStartTimestamp --timestamp=unix "$unit" | tr -d @)
  echo "$unit $(systemctl show -P NeedDaemonReload "$unit") ${started:-0} $newest"
done
"""


def _stale_services(host: Any) -> list[list[str]]:
    """Units whose running process predates their unit files: [unit, NeedDaemonReload,
    main process started, newest unit file]."""
    out = host.run("bash -c %s", SERVICE_FILES)
    assert out.rc == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert len(rows) >= 6, rows
    return [r for r in rows if r[1] != "no" or int(r[2]) < int(r[3])]


def test_services_run_with_the_unit_files_on_disk(host: Any) -> None:
    # A restart a killed run had notified is lost with it (handlers live in the controller):
    # each service must nevertheless run with the unit and drop-ins the roles wrote.
    assert _stale_services(host) == []
    # The check can fail: nginx's drop-in dated after its master started is reported.
    dropin = "/etc/systemd/system/nginx.service.d/hardening.conf"
    assert host.run("touch -r %s /run/testbed-dropin-mtime", dropin).rc == 0
    try:
        assert host.run("touch -d '+1 hour' %s", dropin).rc == 0
        assert "nginx.service" in [r[0] for r in _stale_services(host)]
    finally:
        host.run("touch -r /run/testbed-dropin-mtime %s && rm /run/testbed-dropin-mtime", dropin)
    assert _stale_services(host) == []
