"""Backups proven by restoring them.

Molecule has converged roles/backup on ib-backup-debian12 (which holds the fixture data from
prepare.yml) and checked idempotence. These tests then, in file order: take a backup with
playbooks/backup.yml and look inside it; restore it onto the fresh server ib-restore-debian12
with playbooks/restore.yml and compare everything; run playbooks/restore-drill.yml, then again
on a snapshot with one corrupted upload; and break things on purpose (wrong password, backup
server down, PostgreSQL stopped, pg_dump killed, the backup killed half-way, a full target, a
stale backup): each must fail loudly, and no earlier snapshot may be harmed.

Commands run in the containers through `docker exec`; the playbooks run the way an operator
runs them, against the scenario's inventory.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))

from containers import docker_exec

from playbooks import REPO, failure_messages, run_playbook

SOURCE = "ib-backup-debian12"
TARGET = "ib-restore-debian12"
SERVER = "ib-backup-sftp"
LIVE = "/home/mastodon/live"
SYSTEM = f"{LIVE}/public/system"
# What restic stores: the release directory `live` links to, and the uploads directory every
# release's public/system links to (roles/mastodon's layout).
STORED_LIVE = "/home/mastodon/releases/v4.5.1"
STORED_SYSTEM = "/home/mastodon/shared/system"
REPOSITORY_DIR = "/srv/restic/example"
CONFIG = "/etc/mastodon-backup/config.json"
FACT = "/etc/ansible/facts.d/backup.fact"
LARGE = "media_attachments/files/000/001/000/original/large.bin"


def config(container: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sh(container, f"cat {CONFIG}").stdout)
    return loaded


def restic(container: str, repository: str | None = None) -> str:
    """A shell prefix: restic with the role's configuration, to look past mastodon-backup."""
    cfg = config(container)
    argv = ["restic", "--repo", repository or cfg["repository"],
            "--password-file", "/etc/mastodon-backup/restic-password",
            "--cache-dir", "/var/cache/mastodon-backup"]  # fmt: skip
    if cfg["sftp_command"]:
        argv += ["--option", f"sftp.command={cfg['sftp_command']}"]
    return shlex.join(argv)


def write_config(container: str, path: str, **changes: Any) -> None:
    """A copy of the role's configuration with some values changed (for scratch repositories)."""
    cfg = {**config(container), **changes}
    sh(container, f"umask 077; printf %s {shlex.quote(json.dumps(cfg))} > {path}")


def sh(
    container: str, script: str, timeout: int = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return docker_exec(container, script, timeout, check)


def restic_json(container: str, *args: str) -> Any:
    """restic's --json output: one document, or one per line (`ls`)."""
    out = sh(container, f"{restic(container)} {shlex.join(args)} --json").stdout.strip()
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def fact(container: str) -> dict[str, Any]:
    return json.loads(sh(container, f"cat {FACT}").stdout)


def vault_secret(name: str) -> str:
    proc = subprocess.run(
        [str(REPO / ".venv/bin/ansible-vault"), "view", "--vault-password-file",
         str(REPO / "examples/example-university.vault-pass"),
         str(REPO / "inventories/example/group_vars/all/vault.yml")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return str(yaml.safe_load(proc.stdout)[name])


def table_counts(container: str, database: str = "mastodon_production") -> dict[str, int]:
    sql = (
        "SELECT c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n "
        "FROM public.%I', c.relname), false, true, '')))[1]::text FROM pg_class c JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
    )
    out = sh(
        container, f"runuser -u postgres -- psql -XAt -F ' ' -d {database} -c {shlex.quote(sql)}"
    )
    return {name: int(n) for name, n in (line.split() for line in out.stdout.splitlines())}


def upload_sums(container: str) -> dict[str, str]:
    out = sh(
        container,
        f"cd {SYSTEM} && find . -path ./cache -prune -o -type f -print0 | sort -z | xargs -0 "
        "sha256sum",
    )
    return {
        path.removeprefix("./"): sha
        for sha, path in (line.split(None, 1) for line in out.stdout.splitlines())
    }


def snapshots(container: str = SOURCE) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = restic_json(container, "snapshots")
    return found


def tags(snapshot: dict[str, Any]) -> dict[str, str]:
    return dict(t.split("=", 1) for t in snapshot.get("tags") or [])


def parts(container: str = SOURCE) -> dict[str, int]:
    counts = {"database": 0, "files": 0}
    for snap in snapshots(container):
        counts[tags(snap)["part"]] += 1
    return counts


def repository_intact(container: str = SOURCE, read_all: bool = False) -> None:
    """restic check passes (reading every pack, or the weekly check's share), and the newest
    run's database dump still reads back whole."""
    command = "mastodon-backup check" + (" --read-all" if read_all else "")
    check = sh(container, command, check=False, timeout=1800)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    run = json.loads(sh(container, "mastodon-backup resolve").stdout)
    # pg_restore reads the whole archive from a file (from a pipe it stops after the TOC).
    dump = f"{restic(container)} dump {run['database']} /database.dump > /var/tmp/check.dump"
    listing = sh(
        container, f"{dump} && pg_restore --list /var/tmp/check.dump; rm -f /var/tmp/check.dump"
    )
    assert "TABLE DATA public statuses" in listing.stdout


def backup_now(container: str = SOURCE, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(container, "mastodon-backup run", check=check, timeout=1800)


def freshness(container: str = SOURCE) -> subprocess.CompletedProcess[str]:
    return sh(container, "mastodon-backup freshness", check=False)


# --- the role ----------------------------------------------------------------------------


def test_the_timers_run_and_the_configuration_holds_no_secret() -> None:
    for timer in (
        "mastodon-backup",
        "mastodon-backup-check",
        "mastodon-backup-freshness",
        "mastodon-backup-drill",
    ):
        assert (
            sh(
                SOURCE, f"systemctl is-enabled {timer}.timer && systemctl is-active {timer}.timer"
            ).returncode
            == 0
        )
    config = sh(SOURCE, f"cat {CONFIG}").stdout
    assert vault_secret("vault_backup_restic_password") not in config
    assert vault_secret("vault_redis_password") not in config
    modes = sh(
        SOURCE,
        "stat -c '%a %U' /etc/mastodon-backup/restic-password "
        "/etc/mastodon-backup/redis-password /etc/mastodon-backup",
    ).stdout.split("\n")
    assert modes[:3] == ["600 root", "600 root", "700 root"]
    timer = sh(SOURCE, "systemctl cat mastodon-backup.timer").stdout
    assert "OnCalendar=*-*-* 03:00:00" in timer and "RandomizedDelaySec=1h" in timer


# --- backup ------------------------------------------------------------------------------


def test_backup_playbook_saves_a_complete_tagged_run_without_the_remote_cache() -> None:
    # A line only this server's .env.production has: the restore must bring it to the other.
    sh(SOURCE, f"echo '# only on {SOURCE}: {time.time_ns()}' >> {LIVE}/.env.production")
    rc, _, text = run_playbook("backup.yml", "--limit", SOURCE)
    assert rc == 0, text[-4000:]
    state = fact(SOURCE)
    assert state["last_result"] == "ok"
    run = state["last_good_run"]
    mine = [s for s in snapshots() if tags(s).get("run") == run]
    assert sorted(tags(s)["part"] for s in mine) == ["database", "files"]
    for snap in mine:
        assert {"institution": "example", "mastodon": "v4.5.1", "host": SOURCE}.items() <= tags(
            snap
        ).items()
    files = next(s for s in mine if tags(s)["part"] == "files")
    listed = [entry["path"] for entry in restic_json(SOURCE, "ls", files["id"]) if "path" in entry]
    assert sh(SOURCE, f"readlink -f {LIVE}").stdout.strip() == STORED_LIVE
    assert sh(SOURCE, f"readlink -f {SYSTEM}").stdout.strip() == STORED_SYSTEM
    assert f"{STORED_LIVE}/.env.production" in listed
    assert "/var/lib/redis/dump.rdb" in listed
    assert f"{STORED_SYSTEM}/{LARGE}" in listed
    assert not [p for p in listed if p.startswith(f"{STORED_SYSTEM}/cache")], (
        "the remote media cache was saved"
    )
    assert sh(SOURCE, f"find {SYSTEM}/cache -type f | wc -l").stdout.strip() == "20"  # it exists

    manifest_path = "/var/lib/mastodon-backup/manifest.json"
    manifest = json.loads(sh(SOURCE, f"{restic(SOURCE)} dump {files['id']} {manifest_path}").stdout)
    live_counts = table_counts(SOURCE)
    assert manifest["rows"] == live_counts  # every table, counted in the dump's own snapshot
    assert live_counts["statuses"] >= 12000 and live_counts["backup_fixture_blobs"] == 16000
    sums = upload_sums(SOURCE)
    assert len(sums) == 51 and manifest["uploads"] == sums
    sizes = sh(SOURCE, f"cd {SYSTEM} && stat -c %s {shlex.join(sorted(sums))}").stdout.split()
    assert sum(map(int, sizes)) >= 100 << 20
    stored = f"{restic(SOURCE)} dump {manifest['database']['snapshot']} /database.dump | sha256sum"
    dump = sh(SOURCE, stored).stdout.split()[0]
    assert dump == manifest["database"]["sha256"]


# --- restore onto a fresh server ---------------------------------------------------------


def test_check_mode_on_a_fresh_server_predicts_the_set_up_and_changes_nothing() -> None:
    rc, doc, text = run_playbook("backup.yml", "--limit", TARGET, "--check", "--diff")
    assert rc == 0, text[-4000:]
    assert doc is not None and doc["stats"][TARGET]["changed"] > 0  # it would install things
    assert sh(TARGET, "test -e /usr/local/sbin/mastodon-backup", check=False).returncode != 0
    assert sh(TARGET, "test -e /etc/mastodon-backup/config.json", check=False).returncode != 0


def test_restore_onto_a_fresh_server_loses_nothing() -> None:
    assert sh(TARGET, "test -e /usr/local/sbin/mastodon-backup", check=False).returncode != 0
    assert table_counts(TARGET)["statuses"] == 0  # the fresh server: site.yml only
    rc, _, text = run_playbook("restore.yml", "--limit", TARGET)
    assert rc == 0, text[-4000:]
    manifest_run = fact(SOURCE)["last_good_run"]
    assert fact(TARGET)["last_restore_run"] == manifest_run
    assert fact(TARGET)["last_restore_result"] == "ok"

    source_counts, target_counts = table_counts(SOURCE), table_counts(TARGET)
    lost = {
        t: n - target_counts.get(t, 0)
        for t, n in source_counts.items()
        if target_counts.get(t, 0) != n
    }
    assert lost == {}, f"rows lost per table: {lost}"
    assert upload_sums(TARGET) == upload_sums(SOURCE)  # 0 checksum mismatches
    assert sh(TARGET, f"find {SYSTEM}/cache -type f | wc -l").stdout.strip() == "0"
    env_sha = [
        sh(c, f"sha256sum {LIVE}/.env.production").stdout.split()[0] for c in (SOURCE, TARGET)
    ]
    assert env_sha[0] == env_sha[1]  # with the line only the source had
    assert sh(TARGET, f"stat -c '%a %U' {LIVE}/.env.production").stdout.strip() == "600 mastodon"
    strangers = sh(TARGET, f"find {SYSTEM} ! -user mastodon | wc -l").stdout.strip()
    assert strangers == "0", "restored uploads not owned by mastodon"
    redis = sh(
        TARGET,
        "REDISCLI_AUTH=$(cat /etc/mastodon-backup/redis-password) redis-cli "
        "--no-auth-warning GET backup:fixture",
    )
    assert redis.stdout.strip() == "written-before-the-backup"
    canary = sh(
        TARGET,
        f"cd {LIVE} && runuser -u mastodon -- env RAILS_ENV=production bin/rails runner "
        "\"print Account.find_local('canary').user.otp_secret\"",
    )
    assert canary.stdout.strip() == "CANARYOTPSECRET"
    health = sh(
        TARGET,
        "curl -sk -o /dev/null -w '%{http_code}' -H 'Host: social.example-university.edu' "
        "https://127.0.0.1/health",
    )
    assert health.stdout == "200"


def test_restore_onto_a_server_that_holds_data_needs_confirmation() -> None:
    before = table_counts(TARGET)["statuses"]
    rc, doc, text = run_playbook("restore.yml", "--limit", TARGET)
    assert rc != 0
    message = failure_messages(doc, text)
    assert f"already holds {before} statuses" in message
    assert "backup_restore_confirm_overwrite=true" in message
    assert (
        sh(TARGET, "systemctl is-active mastodon-web mastodon-sidekiq redis-server").returncode == 0
    )
    assert table_counts(TARGET)["statuses"] == before


def test_restore_refuses_to_run_without_the_escrowed_passwords() -> None:
    rc, doc, text = run_playbook("restore.yml", "--limit", TARGET, "-e", "backup_secrets_escrow=''")
    assert rc != 0
    assert "backup_secrets_escrow" in failure_messages(doc, text)
    rc, doc, text = run_playbook(
        "restore.yml", "--limit", TARGET, "-e", "backup_restic_password=''"
    )
    assert rc != 0
    message = failure_messages(doc, text)
    assert "the restic password (backup_restic_password" in message
    assert "sealed copy in the IT office safe" in message  # where to get it: the inventory's escrow


# --- restore drill -----------------------------------------------------------------------


def test_the_restore_drill_passes_and_writes_a_dated_report() -> None:
    rc, _, text = run_playbook("restore-drill.yml", "--limit", SOURCE)
    assert rc == 0, text[-4000:]
    drill = fact(SOURCE)["last_drill"]
    assert drill["ok"] is True and drill["run"] == fact(SOURCE)["last_good_run"]
    report = json.loads(sh(SOURCE, f"cat {drill['report']}").stdout)
    checks = report["checks"]
    assert checks["rows"]["rows_lost"] == 0 and checks["rows"]["rows_found"] >= 28000
    assert (
        checks["uploads"]["upload_mismatches"] == 0 and checks["uploads"]["uploads_expected"] == 51
    )
    assert checks["second_factor_secrets"]["decrypted"] >= 1
    assert checks["health"] == {"ok": True, "status": 200}
    text_report = sh(SOURCE, f"cat {drill['report'].removesuffix('.json')}.txt").stdout
    assert "PASSED" in text_report
    assert (
        "mastodon_restore_drill"
        not in sh(
            SOURCE, "runuser -u postgres -- psql -XAtc 'SELECT datname FROM pg_database'"
        ).stdout
    )


WALK = """
import json, subprocess, sys
argv = json.loads(sys.argv[1])
def cat(*a):
    return json.loads(subprocess.run(argv + ["cat", *a], capture_output=True, check=True).stdout)
tree = cat("snapshot", sys.argv[2])["tree"]
for name in sys.argv[3].strip("/").split("/"):
    node = next(n for n in cat("blob", tree)["nodes"] if n["name"] == name)
    tree = node.get("subtree")
print(node["content"][0])
"""


def _pack_of_large_upload() -> tuple[str, int]:
    """The pack file holding the first blob of large.bin in the newest files snapshot, and the
    blob's offset in it."""
    run = json.loads(sh(SOURCE, "mastodon-backup resolve").stdout)
    argv = json.dumps(shlex.split(restic(SOURCE)))
    walk = (
        f"python3 -c {shlex.quote(WALK)} {shlex.quote(argv)} {run['files']} {STORED_SYSTEM}/{LARGE}"
    )
    blob = sh(SOURCE, walk).stdout.strip()
    found = sh(SOURCE, f"{restic(SOURCE)} find --show-pack-id --blob {blob}").stdout
    pack = found.split("Object belongs to pack ")[1].split()[0]
    offset = int(found.split("offset ")[1].split(",")[0])
    return pack, offset


def test_the_drill_fails_with_a_clear_report_when_an_upload_in_the_snapshot_is_corrupted() -> None:
    pack, offset = _pack_of_large_upload()
    path = f"{REPOSITORY_DIR}/data/{pack[:2]}/{pack}"
    sh(SERVER, f"cp -a {path} /root/pack.saved")
    try:
        # Flip one byte inside that blob's ciphertext.
        flip = (
            f"f = open({path!r}, 'r+b'); f.seek({offset + 100}); b = f.read(1); "
            f"f.seek({offset + 100}); f.write(bytes([b[0] ^ 0xFF])); f.close()"
        )
        sh(SERVER, f"python3 -c {shlex.quote(flip)}")
        rc, doc, text = run_playbook("restore-drill.yml", "--limit", SOURCE)
        assert rc != 0
        assert "Restore drill FAILED" in failure_messages(doc, text)
        drill = fact(SOURCE)["last_drill"]
        assert drill["ok"] is False
        report = json.loads(sh(SOURCE, f"cat {drill['report']}").stdout)
        named = json.dumps(report)
        assert "large.bin" in named, named[:3000]
        assert "FAILED" in sh(SOURCE, f"cat {drill['report'].removesuffix('.json')}.txt").stdout
        check = sh(SOURCE, "mastodon-backup check --read-all", check=False, timeout=1800)
        assert check.returncode != 0
        assert fact(SOURCE)["last_check_result"] == "failed"
        assert "repository contains errors" in fact(SOURCE)["last_check_error"], check.stderr
    finally:
        sh(SERVER, f"cp -a /root/pack.saved {path} && rm -f /root/pack.saved")
    repository_intact(read_all=True)


# --- faults ------------------------------------------------------------------------------


def _fails_loudly(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode != 0
    assert words in result.stdout + result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
    state = fact(SOURCE)
    assert state["last_result"] == "failed" and words in state["last_error"]
    red = freshness()
    assert red.returncode != 0 and "STALE" in red.stderr
    assert fact(SOURCE)["fresh"] is False


def test_a_wrong_password_fails_clearly_and_never_reinitialises() -> None:
    config_before = sh(SERVER, f"sha256sum {REPOSITORY_DIR}/config").stdout
    before = parts()
    sh(
        SOURCE,
        "cp -a /etc/mastodon-backup/restic-password /root/restic-password.saved && echo "
        "'a-wrong-password-000' > /etc/mastodon-backup/restic-password",
    )
    try:
        _fails_loudly(backup_now(check=False), "wrong restic password")
        status = sh(SOURCE, "mastodon-backup repo-status", check=False)
        assert json.loads(status.stdout)["state"] == "wrong-password"
        init = sh(SOURCE, "mastodon-backup init", check=False)
        assert init.returncode != 0 and "not initialising" in init.stderr
    finally:
        sh(SOURCE, "cp -a /root/restic-password.saved /etc/mastodon-backup/restic-password")
    assert sh(SERVER, f"sha256sum {REPOSITORY_DIR}/config").stdout == config_before
    assert parts() == before
    repository_intact()
    backup_now()
    assert freshness().returncode == 0


def test_the_role_refuses_a_wrong_password_and_another_institutions_repository() -> None:
    rc, doc, text = run_playbook(
        "backup.yml",
        "--limit",
        SOURCE,
        "-e",
        "backup_restic_password=a-wrong-password-000",
        "--tags",
        "backup-validate,backup-configure,backup-repository,backup-install",
    )
    try:
        assert rc != 0 and "wrong restic password" in failure_messages(doc, text)
    finally:
        rc2, _, text2 = run_playbook("backup.yml", "--limit", SOURCE, "--tags", "backup-configure")
        assert rc2 == 0, text2[-3000:]
    # A repository that holds another institution's snapshots, opened with our password.
    other = config(SOURCE)["repository"].removesuffix("/example") + "/other"
    sh(SOURCE, f"{restic(SOURCE, other)} init")
    sh(
        SOURCE,
        f"echo x | {restic(SOURCE, other)} backup --stdin --tag institution=other-university",
    )
    rc, doc, text = run_playbook(
        "backup.yml", "--limit", SOURCE, "-e", f"backup_restic_repository={other}",
        "--tags", "backup-configure,backup-repository",
    )  # fmt: skip
    try:
        assert rc != 0
        assert "holds snapshots of institution=other-university" in failure_messages(doc, text)
    finally:
        rc2, _, text2 = run_playbook("backup.yml", "--limit", SOURCE, "--tags", "backup-configure")
        assert rc2 == 0, text2[-3000:]


def test_an_unreachable_backup_server_fails_clearly() -> None:
    before = parts()
    sh(SERVER, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    try:
        _fails_loudly(backup_now(check=False), "cannot be reached")
    finally:
        sh(SERVER, "systemctl start ssh")
    assert parts() == before
    repository_intact()


def test_postgresql_stopped_fails_the_backup_and_keeps_no_snapshot() -> None:
    before = parts()
    sh(SOURCE, "systemctl stop postgresql")
    try:
        _fails_loudly(backup_now(check=False), "PostgreSQL")
    finally:
        sh(
            SOURCE,
            "systemctl start postgresql && until runuser -u postgres -- pg_isready -q; do "
            "sleep 1; done",
            timeout=120,
        )
    assert parts() == before
    repository_intact()


def test_a_dump_killed_half_way_never_becomes_a_good_looking_snapshot() -> None:
    """restic 0.14's --stdin stores whatever arrived: the relay sees pg_dump's exit status."""
    before = parts()
    unit = "backup-under-test"
    sh(
        SOURCE,
        f"systemctl reset-failed {unit} 2>/dev/null; systemd-run --unit={unit} "
        "--property=RemainAfterExit=yes mastodon-backup run",
    )
    killed = sh(
        SOURCE,
        # Half-way: once the relay (mastodon-backup, root) has passed restic the dump's first
        # megabyte; pg_dump's own /proc/PID/io is not readable without CAP_SYS_PTRACE.
        # (The brackets keep each pattern from matching this loop's own command line.)
        "for i in $(seq 1 1200); do r=$(pgrep -f 'mastodon-backup[ ]run' | head -1); "
        "w=$(awk '/^wchar/ {print $2}' /proc/${r:-0}/io 2>/dev/null); p=$(pgrep -x pg_dump); "
        'if [ -n "$p" ] && [ "${w:-0}" -gt 1048576 ]; then kill -9 $p && echo killed && exit 0; '
        "fi; sleep 0.05; done; exit 1",
        timeout=120,
        check=False,
    )
    assert killed.stdout.strip() == "killed", "pg_dump never ran"
    sh(
        SOURCE,
        f"for i in $(seq 1 300); do systemctl show -p SubState {unit} | grep -qE "
        "'exited|failed' && exit 0; sleep 1; done; exit 1",
        timeout=400,
    )
    status = sh(SOURCE, f"systemctl show -p ExecMainStatus {unit}").stdout.strip()
    out = sh(SOURCE, f"journalctl -u {unit} --no-pager").stdout
    sh(SOURCE, f"systemctl stop {unit}; systemctl reset-failed {unit}", check=False)
    assert status != "ExecMainStatus=0", out
    assert "pg_dump failed" in out and "not kept" in out, out
    assert parts() == before, "a snapshot of the killed dump was kept"
    assert fact(SOURCE)["last_result"] == "failed"
    red = freshness()
    assert red.returncode != 0 and "pg_dump failed" in red.stderr
    repository_intact()


def test_a_backup_killed_half_way_harms_no_earlier_snapshot() -> None:
    before = parts()
    good = fact(SOURCE)["last_good_run"]
    new = f"{SYSTEM}/media_attachments/files/000/000/002/original/new-before-kill.bin"
    sh(SOURCE, f"head -c 41943040 /dev/urandom > {new}")  # new data: the files part takes a while
    sh(
        SOURCE,
        "systemctl reset-failed mastodon-backup.service; systemctl start --no-block "
        "mastodon-backup.service",
    )
    seen = sh(
        SOURCE,
        # The bracket keeps the pattern from matching this loop's own command line.
        "for i in $(seq 1 600); do pgrep -f 'restic.*part=file[s]' >/dev/null && exit 0; sleep "
        "0.1; done; exit 1",
        timeout=120,
        check=False,
    )
    assert seen.returncode == 0, "the files part never started"
    sh(SOURCE, "systemctl kill --signal=SIGKILL mastodon-backup.service; sleep 2")
    state = sh(SOURCE, "systemctl show -p ActiveState,Result mastodon-backup.service").stdout
    assert "Result=signal" in state or "ActiveState=failed" in state, state
    after = parts()
    assert after["files"] == before["files"], "a half-written files snapshot exists"
    # The killed run left "running" in the fact: with no job holding the lock, that is red.
    red = freshness()
    assert red.returncode != 0 and "ended without finishing" in red.stderr, red.stderr
    assert fact(SOURCE)["last_result"] == "failed"
    # The stale lock is removed, check passes, the last run still reads back.
    repository_intact(read_all=True)
    assert json.loads(sh(SOURCE, "mastodon-backup resolve").stdout)["run"] == good
    sh(SOURCE, f"rm -f {new}")
    backup_now()  # and the next backup works, forgetting the killed run's orphaned part
    assert freshness().returncode == 0
    assert after["database"] > after["files"]  # the killed run's database part, orphaned
    final = parts()
    assert final["database"] == final["files"], "the orphaned part was not forgotten"
    assert fact(SOURCE)["last_good_run"] != good


def test_a_full_backup_target_fails_clearly_and_harms_no_earlier_snapshot() -> None:
    """A second repository on a small filesystem of the backup server: one good backup, then the
    disk is filled and new data is written."""
    sh(
        SERVER,
        "mkdir -p /srv/restic-small && mount -t tmpfs -o size=230m tmpfs /srv/restic-small "
        "&& chown backup-sftp /srv/restic-small",
    )
    small = config(SOURCE)["repository"].replace("/srv/restic/example", "/srv/restic-small/example")
    write_config(SOURCE, "/etc/mastodon-backup/small.json", repository=small,
                 fact_file="/var/lib/mastodon-backup/small.fact")  # fmt: skip
    env = "MASTODON_BACKUP_CONFIG=/etc/mastodon-backup/small.json"
    try:
        sh(SOURCE, f"{env} mastodon-backup init")
        sh(SOURCE, f"{env} mastodon-backup run", timeout=1800)
        good = json.loads(sh(SOURCE, f"{env} mastodon-backup resolve").stdout)
        sh(
            SERVER,
            "fallocate -l $(( $(df --output=avail -B1 /srv/restic-small | tail -1) - 4194304 "
            ")) /srv/restic-small/filler",
        )
        sh(
            SOURCE,
            "head -c 20971520 /dev/urandom > "
            f"{SYSTEM}/media_attachments/files/000/000/001/original/new.bin",
        )
        failed = sh(SOURCE, f"{env} mastodon-backup run", check=False, timeout=1800)
        assert failed.returncode != 0
        # OpenSSH's SFTP server reports a full disk only as a refused write.
        assert "refused a write" in failed.stderr, failed.stderr[-2000:]
        assert "free space" in failed.stderr
        small_fact = json.loads(sh(SOURCE, "cat /var/lib/mastodon-backup/small.fact").stdout)
        assert small_fact["last_result"] == "failed"
        assert sh(SOURCE, f"{env} mastodon-backup freshness", check=False).returncode != 0
        sh(SERVER, "rm -f /srv/restic-small/filler")
        sh(SOURCE, f"{env} mastodon-backup check --read-all", timeout=1800)
        assert json.loads(sh(SOURCE, f"{env} mastodon-backup resolve").stdout)["run"] == good["run"]
    finally:
        sh(
            SOURCE,
            f"rm -f {SYSTEM}/media_attachments/files/000/000/001/original/new.bin "
            "/etc/mastodon-backup/small.json /var/lib/mastodon-backup/small.fact",
            check=False,
        )
        sh(SERVER, "umount /srv/restic-small", check=False)


def test_freshness_turns_red_when_the_newest_complete_backup_is_too_old() -> None:
    """A scratch local-path repository whose only complete run is 30 hours old, then a real
    backup into it: the age comes from the repository, not from a status file."""
    sh(SOURCE, "rm -rf /var/tmp/fresh-repo /var/tmp/fresh.fact")
    write_config(SOURCE, "/etc/mastodon-backup/fresh.json", repository="/var/tmp/fresh-repo",
                 sftp_command="", fact_file="/var/tmp/fresh.fact")  # fmt: skip
    sh(SOURCE, "MASTODON_BACKUP_CONFIG=/etc/mastodon-backup/fresh.json mastodon-backup init")
    env = "MASTODON_BACKUP_CONFIG=/etc/mastodon-backup/fresh.json"
    r = "restic --repo /var/tmp/fresh-repo --password-file /etc/mastodon-backup/restic-password"

    def complete_run(run: str, hours_ago: int) -> None:
        for part in ("database", "files"):
            when = f"$(date -d '{hours_ago} hours ago' '+%Y-%m-%d %H:%M:%S')"  # the host's zone
            sh(
                SOURCE,
                f'echo {part} | {r} backup --stdin --stdin-filename {part} --time "{when}" '
                f"--tag institution=example,host={SOURCE},run={run},part={part}",
            )

    try:
        complete_run("old", 30)
        stale = sh(SOURCE, f"{env} mastodon-backup freshness", check=False)
        assert stale.returncode != 0 and "STALE" in stale.stderr and "30." in stale.stderr
        assert json.loads(sh(SOURCE, "cat /var/tmp/fresh.fact").stdout)["fresh"] is False
        # A real backup into this local-path repository makes it fresh.
        sh(SOURCE, f"{env} mastodon-backup run", timeout=1800)
        made = json.loads(sh(SOURCE, "cat /var/tmp/fresh.fact").stdout)["last_good_run"]
        fresh = sh(SOURCE, f"{env} mastodon-backup freshness", check=False)
        assert fresh.returncode == 0, fresh.stderr
        assert json.loads(sh(SOURCE, "cat /var/tmp/fresh.fact").stdout)["fresh"] is True
        # A run with only its database part is not a complete backup: the real one stays newest.
        sh(
            SOURCE,
            f"echo x | {r} backup --stdin --stdin-filename database --tag "
            f"institution=example,host={SOURCE},run=half,part=database",
        )
        sh(SOURCE, f"{env} mastodon-backup freshness")
        assert json.loads(sh(SOURCE, "cat /var/tmp/fresh.fact").stdout)["newest_run"] == made
    finally:
        sh(
            SOURCE,
            "rm -rf /var/tmp/fresh-repo /etc/mastodon-backup/fresh.json /var/tmp/fresh.fact",
            check=False,
        )


def test_the_freshness_unit_fails_in_the_journal_when_the_last_backup_failed() -> None:
    sh(SOURCE, "systemctl stop postgresql")
    try:
        backup_now(check=False)
    finally:
        sh(
            SOURCE,
            "systemctl start postgresql && until runuser -u postgres -- pg_isready -q; do "
            "sleep 1; done",
            timeout=120,
        )
    since = sh(SOURCE, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    unit = sh(SOURCE, "systemctl start mastodon-backup-freshness.service", check=False)
    assert unit.returncode != 0
    journal = sh(
        SOURCE,
        f"journalctl -u mastodon-backup-freshness.service -p err --since {shlex.quote(since)} "
        "--no-pager",
    ).stdout
    assert "backups are STALE" in journal and "FAILED" in journal
    backup_now()
    sh(
        SOURCE,
        "systemctl reset-failed mastodon-backup-freshness.service; systemctl start "
        "mastodon-backup-freshness.service",
    )
    assert fact(SOURCE)["fresh"] is True


def test_no_secret_reaches_the_journal_or_the_reports() -> None:
    secrets = [
        vault_secret(n)
        for n in (
            "vault_backup_restic_password",
            "vault_redis_password",
            "vault_mastodon_secret_key_base",
            "vault_mastodon_active_record_encryption_primary_key",
        )
    ]
    journal = sh(
        SOURCE,
        "journalctl --no-pager -u 'mastodon-backup*' -u 'mastodon-drill-web'; cat "
        "/var/lib/mastodon-backup/drills/* /etc/ansible/facts.d/backup.fact; "
        "ls -la /var/lib/mastodon-backup",
    ).stdout
    assert "drill.env" not in journal  # the drill's environment file is gone after the drill
    for secret in secrets:
        assert secret not in journal
