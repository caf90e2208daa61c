"""roles/backup/files/mastodon_backup.py without a server: restic's messages and exit codes
mapped to what an operator must do, complete runs, the manifest comparison, the uploads'
checksums without the remote cache, and the restic 0.14 relay that never keeps a failed dump
(a fake restic on PATH records what it was asked). The scenario `backup` runs it for real."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from cli_testlib import load_module

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "roles" / "backup" / "files" / "mastodon_backup.py"


mb = load_module("mastodon_backup", TOOL)
REPO = "sftp:backup@192.0.2.5:/srv/restic/example"

# What restic 0.14 prints (exit 1 for all of them), recorded on Debian 12.
STDERR_014 = {
    "12": "Fatal: wrong password or no key found\n",
    "10": (
        "Fatal: unable to open config file: stat /srv/x/config: no such file or directory\n"
        "Is there a repository at the following location?\n/srv/x\n"
    ),
    "unreachable": (
        "subprocess ssh: ssh: connect to host 192.0.2.5 port 22: Connection refused\n"
        "Fatal: unable to open repository at sftp:backup@192.0.2.5:/x: unable to start the sftp "
        "session, error: EOF\n"
    ),
    "11": "unable to create lock in backend: repository is already locked by PID 42 on host\n",
    "full": "Fatal: unable to save snapshot: no space left on device\n",
    "refused": 'Fatal: unable to save snapshot: Write: sftp: "Failure" (SSH_FX_FAILURE)\n',
}


@pytest.mark.parametrize("kind", sorted(STDERR_014))
def test_restic_014_messages_are_named_by_what_happened(kind: str) -> None:
    got, message = mb.explain_restic(1, STDERR_014[kind], REPO)
    assert got == kind
    assert REPO in message
    expected = {
        "12": "wrong restic password",
        "10": "there is no restic repository",
        "unreachable": "cannot be reached",
        "11": "is locked by another restic process",
        "full": "is full",
        "refused": "refused a write",
    }[kind]
    assert expected in message


@pytest.mark.parametrize(
    ("rc", "words"),
    [
        (10, "no restic repository"),
        (11, "locked"),
        (12, "wrong restic password"),
        (3, "incomplete"),
    ],
)
def test_restic_017_exit_codes_are_named_without_stderr(rc: int, words: str) -> None:
    assert words in mb.explain_restic(rc, "", REPO)[1]


def test_an_unknown_failure_keeps_restics_last_line() -> None:
    kind, message = mb.explain_restic(7, "something\nFatal: the odd thing\n\n", REPO)
    assert kind == "failed"
    assert message == "restic failed (exit 7): Fatal: the odd thing"


def test_restic_times_with_nanoseconds_and_offsets() -> None:
    utc = mb.parse_time("2026-12-01T15:41:01.276783356Z")
    assert utc == dt.datetime(2026, 12, 1, 15, 41, 1, 276783, tzinfo=dt.UTC)
    assert mb.parse_time("2026-12-01T16:41:01+01:00") == utc.replace(microsecond=0)
    with pytest.raises(mb.BackupError):
        mb.parse_time("yesterday")


def _snap(run: str, part: str, when: str, sid: str) -> dict[str, object]:
    return {
        "id": sid,
        "time": when,
        "tags": ["institution=example", f"run={run}", f"part={part}", "host=h"],
    }


def test_only_complete_runs_count_and_the_newest_comes_first() -> None:
    snapshots = [
        _snap("a", "database", "2026-11-30T03:00:00Z", "d1"),
        _snap("a", "files", "2026-11-30T03:01:00Z", "f1"),
        _snap("b", "database", "2026-12-01T03:00:00Z", "d2"),
        _snap("b", "files", "2026-12-01T03:02:00Z", "f2"),
        _snap("c", "database", "2026-12-01T09:00:00Z", "d3"),  # no files part: killed
        {"id": "x", "time": "2026-12-01T10:00:00Z", "tags": None},  # not ours
    ]
    complete = mb.runs(snapshots)
    assert [r["run"] for r in complete] == ["b", "a"]
    assert complete[0]["database"] == "d2" and complete[0]["files"] == "f2"
    assert complete[0]["time"] == mb.parse_time("2026-12-01T03:02:00Z")


def test_the_manifest_comparison_counts_lost_rows_and_changed_uploads(tmp_path: Path) -> None:
    system = tmp_path / "system"
    (system / "media" / "a").mkdir(parents=True)
    (system / "media" / "a" / "one.png").write_bytes(b"one")
    (system / "media" / "a" / "two.png").write_bytes(b"changed")
    (system / "cache" / "x").mkdir(parents=True)
    (system / "cache" / "x" / "remote.png").write_bytes(b"remote")
    sums = mb.upload_checksums(system)
    assert sorted(sums) == ["media/a/one.png", "media/a/two.png"]  # the cache left out
    manifest = {
        "rows": {"statuses": 10, "accounts": 3, "users": 2},
        "uploads": {**sums, "media/a/two.png": "0" * 64, "media/a/three.png": "1" * 64},
    }
    report = mb.compare(manifest, {"statuses": 10, "accounts": 2, "users": 2}, system)
    assert report["rows_lost"] == 1 and report["tables_differing"] == {"accounts": 1}
    assert report["upload_mismatches"] == 2
    assert report["mismatched_uploads"] == ["media/a/three.png", "media/a/two.png"]
    assert report["remote_cache_files_restored"] == 1
    clean = mb.compare({"rows": {"statuses": 10}, "uploads": sums}, {"statuses": 10}, system)
    assert clean["rows_lost"] == 0 and clean["upload_mismatches"] == 0


FAKE_RESTIC = """#!/usr/bin/env python3
import json, os, sys
log = os.environ["FAKE_RESTIC_LOG"]
args = sys.argv[1:]
with open(log, "a") as out:
    out.write(json.dumps(args) + "\\n")
if "unlock" in args:
    sys.exit(0)
locked = os.environ.get("FAKE_RESTIC_LOCKED_ONCE", "")
if locked and "forget" in args and not os.path.exists(locked):
    open(locked, "w").close()
    sys.stderr.write("unable to create lock in backend: repository is already locked "
                     "exclusively by PID 4242 on h\\n")
    sys.exit(1)
if "forget" in args and "--json" in args:
    print("[]")
    sys.exit(0)
if "backup" in args:
    data = sys.stdin.buffer.read()
    with open(log + ".stdin", "wb") as out:
        out.write(data)
    short = int(os.environ.get("FAKE_RESTIC_SHORT", "0"))
    print(json.dumps({"message_type": "summary", "snapshot_id": "5ab5ab5a",
                      "total_bytes_processed": len(data) - short}))
sys.exit(0)
"""


@pytest.fixture
def fake_restic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    restic = bin_dir / "restic"
    restic.write_text(FAKE_RESTIC)
    restic.chmod(restic.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "restic.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RESTIC_LOG", str(log))
    return log


def _restic() -> object:
    return mb.Restic(
        {"repository": "/r", "password_file": "/p", "cache_dir": "/c", "sftp_command": ""}
    )


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_failing_pg_dump_never_stays_a_snapshot_with_restic_014(fake_restic: Path) -> None:
    # pg_dump writes part of a dump, then fails: plain `pg_dump | restic --stdin` would keep it.
    dump = ["sh", "-c", "printf PGDMP-partial; echo 'connection lost' >&2; exit 1"]
    with pytest.raises(mb.BackupError) as failure:
        mb._relay_dump(_restic(), dump, ["--tag", "run=x,part=database"])
    assert "pg_dump failed (exit 1): connection lost" in str(failure.value)
    assert "not kept" in str(failure.value)
    calls = _calls(fake_restic)
    assert "backup" in calls[0] and "--stdin" in calls[0]
    assert calls[-1][-2:] == ["forget", "5ab5ab5a"]  # the snapshot restic made is forgotten
    assert (Path(str(fake_restic) + ".stdin")).read_bytes() == b"PGDMP-partial"


def test_a_good_dump_is_relayed_whole_and_hashed(fake_restic: Path) -> None:
    dump = ["sh", "-c", "head -c 3000000 /dev/zero"]
    snapshot, sha, size, counted = mb._relay_dump(_restic(), dump, ["--tag", "run=x,part=database"])
    assert snapshot == "5ab5ab5a"
    stored = Path(str(fake_restic) + ".stdin").read_bytes()
    assert len(stored) == 3000000 == size == counted
    import hashlib

    assert sha == hashlib.sha256(stored).hexdigest()
    assert not [c for c in _calls(fake_restic) if "forget" in c]


def test_the_relay_reports_restics_own_count_of_the_stored_bytes(
    fake_restic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # backup_database compares this count with the bytes relayed: a restic that stored less
    # than it was handed must not look whole.
    monkeypatch.setenv("FAKE_RESTIC_SHORT", "1")
    dump = ["sh", "-c", "head -c 4096 /dev/zero"]
    _, _, size, counted = mb._relay_dump(_restic(), dump, ["--tag", "run=x,part=database"])
    assert (size, counted) == (4096, 4095)


def test_the_status_fact_is_merged_and_written_whole(tmp_path: Path) -> None:
    cfg = {"fact_file": str(tmp_path / "facts.d" / "backup.fact")}
    mb.update_fact(cfg, last_result="ok", last_good_run="a")
    mb.update_fact(cfg, last_result="failed", last_error="boom")
    fact = json.loads(Path(cfg["fact_file"]).read_text())
    assert fact == {"last_result": "failed", "last_good_run": "a", "last_error": "boom"}
    assert [p.name for p in (tmp_path / "facts.d").iterdir()] == ["backup.fact"]  # no temp left


def test_the_configuration_refuses_names_that_are_not_plain_sql(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    good = {"database": "mastodon_production", "database_role": "mastodon", "drill_database": "d"}
    path.write_text(json.dumps(good))
    assert mb.load_config(path)["database"] == "mastodon_production"
    path.write_text(json.dumps({**good, "database": "x'; DROP DATABASE y; --"}))
    with pytest.raises(mb.BackupError, match="database must be a plain lower-case SQL name"):
        mb.load_config(path)
    with pytest.raises(mb.BackupError, match=r"run playbooks/backup\.yml first"):
        mb.load_config(tmp_path / "missing.json")


class _StubRestic:
    repo = "/r"

    def __init__(self, snapshots: list[dict[str, object]]) -> None:
        self._snapshots = snapshots

    def snapshots(self) -> list[dict[str, object]]:
        return self._snapshots


def test_a_restore_names_its_run_by_latest_run_id_or_snapshot_id() -> None:
    stub = _StubRestic(
        [
            _snap("a", "database", "2026-11-30T03:00:00Z", "d1aaaa"),
            _snap("a", "files", "2026-11-30T03:01:00Z", "f1aaaa"),
            _snap("b", "database", "2026-12-01T03:00:00Z", "d2bbbb"),
            _snap("b", "files", "2026-12-01T03:02:00Z", "f2bbbb"),
            _snap("c", "database", "2026-12-01T09:00:00Z", "d3cccc"),
        ]
    )
    assert mb.resolve(stub, "latest")["run"] == "b"
    assert mb.resolve(stub, "a")["files"] == "f1aaaa"
    assert mb.resolve(stub, "d1aa")["run"] == "a"  # a snapshot id prefix names its run
    with pytest.raises(mb.BackupError, match="at least 4 characters"):
        mb.resolve(stub, "c")  # not a complete run's id, and too short for a snapshot id
    with pytest.raises(mb.BackupError, match="at least 4 characters"):
        mb.resolve(stub, "")  # an empty name never means "the newest"
    with pytest.raises(mb.BackupError, match="no complete backup run 'd3cc'"):
        mb.resolve(stub, "d3cc")  # run c has only its database part
    with pytest.raises(mb.BackupError, match="names more than one run"):
        mb.resolve(
            _StubRestic(
                [
                    *stub.snapshots(),
                    _snap("z", "database", "2026-12-01T10:00:00Z", "d1aaab"),
                    _snap("z", "files", "2026-12-01T10:01:00Z", "f9"),
                ]
            ),
            "d1aa",
        )
    with pytest.raises(mb.BackupError, match="holds no complete backup run"):
        mb.resolve(_StubRestic([]), "latest")


def test_unchanged_uploads_keep_their_checksum_and_changed_ones_are_hashed_again(
    tmp_path: Path,
) -> None:
    system, cache = tmp_path / "system", tmp_path / "sums.json"
    (system / "m").mkdir(parents=True)
    (system / "m" / "a.png").write_bytes(b"a")
    (system / "m" / "b.png").write_bytes(b"b")
    first = mb.upload_checksums(system, cache)
    # A stale entry with the right stamp would be believed: prove the cache is what is used...
    entries = json.loads(cache.read_text())
    entries["m/a.png"][3] = "cached"
    cache.write_text(json.dumps(entries))
    assert mb.upload_checksums(system, cache)["m/a.png"] == "cached"
    # ... and that a rewritten file (new size and time) is hashed again.
    (system / "m" / "a.png").write_bytes(b"a changed")
    again = mb.upload_checksums(system, cache)
    assert again["m/a.png"] not in ("cached", first["m/a.png"])
    assert again["m/b.png"] == first["m/b.png"]
    assert again == mb.upload_checksums(system)  # the same as hashing everything


def test_retention_works_from_the_runs_listing_in_one_forget_and_one_policy_call(
    fake_restic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing the run opened the repository with: a complete run of this host, a database
    # part of this host whose run was killed (an orphan), a complete run of another host older
    # than the retention, and another host's orphan (that host may be running it now).
    now = mb.utcnow()
    old = mb.iso(now - dt.timedelta(days=200))
    recent = mb.iso(now - dt.timedelta(hours=2))
    before = [
        _snap("a", "database", recent, "d-a"),
        _snap("a", "files", recent, "f-a"),
        _snap("k", "database", recent, "d-killed"),
        {**_snap("o", "database", old, "d-old"), "tags": ["institution=example", "run=o",
                                                          "part=database", "host=other"]},
        {**_snap("o", "files", old, "f-old"), "tags": ["institution=example", "run=o",
                                                       "part=files", "host=other"]},
        {**_snap("p", "database", recent, "d-busy"), "tags": ["institution=example", "run=p",
                                                              "part=database", "host=other"]},
    ]  # fmt: skip
    # The first forget meets a lock left by a killed job: unlock, then the same forget again.
    monkeypatch.setenv("FAKE_RESTIC_LOCKED_ONCE", str(tmp_path / "locked-once"))
    cfg = {"host": "h", "institution": "example", "retention_days": 180,
           "keep": {"daily": 7, "weekly": 4, "monthly": 6}}  # fmt: skip
    mb.apply_retention(cfg, _restic(), before)
    calls = [c[c.index("/c") + 1 :] for c in _calls(fake_restic)]  # after --cache-dir /c
    assert calls[:3] == [
        ["forget", "d-killed", "d-old", "f-old"],
        ["unlock"],
        ["forget", "d-killed", "d-old", "f-old"],
    ]
    assert calls[3][:2] == ["forget", "--json"] and "--keep-daily" in calls[3]
    # No listing of its own, and the weekly check prunes unless data would outlive the
    # retention: the expired run is 200 days old, so this run prunes now.
    assert not [c for c in calls if c[0] == "snapshots"]
    assert calls[4:] == [["prune"]]


def test_a_lock_of_a_live_job_is_not_taken_away(
    fake_restic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # unlock removes only stale locks: when the command still meets a lock, it fails clearly.
    marker = tmp_path / "locked-once"
    monkeypatch.setenv("FAKE_RESTIC_LOCKED_ONCE", str(marker))
    restic = _restic()
    with pytest.raises(mb.BackupError, match="locked"):
        restic.run("forget", "x")  # without unlock_stale: the lock is reported, not removed
    assert [c[-1] for c in _calls(fake_restic)] == ["x"]
