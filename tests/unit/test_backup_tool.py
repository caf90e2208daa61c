"""roles/backup/files/mastodon_backup.py without a server: restic's messages and exit codes
mapped to what an operator must do, complete runs, the manifest comparison, the uploads'
checksums without the remote cache, the restic 0.14 relay that never keeps a failed dump,
`verify` of a run against its manifest and the database-only restore of a rollback with the
writes it undoes (a fake restic on PATH records what it was asked and serves a fake
repository). The scenario `backup` runs it for real."""

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
store = os.environ.get("FAKE_RESTIC_STORE", "")
if store and "snapshots" in args:
    with open(os.path.join(store, "snapshots.json")) as listing:
        sys.stdout.write(listing.read())
    sys.exit(0)
if store and "dump" in args:
    # dump SNAPSHOT PATH: the file stored at STORE/SNAPSHOT/PATH, streamed to stdout.
    snapshot, path = args[args.index("dump") + 1 :][:2]
    stored = os.path.join(store, snapshot, path.lstrip("/"))
    if not os.path.isfile(stored):
        sys.stderr.write(f"Fatal: cannot dump file: path {path!r} not found in snapshot\\n")
        sys.exit(1)
    with open(stored, "rb") as data:
        while chunk := data.read(65536):
            sys.stdout.buffer.write(chunk)
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


# --------------------------------------------------------------------------- verify, and the
# database-only restore of a rollback, against a fake repository (FAKE_RESTIC_STORE: the
# snapshot listing and, per snapshot id, the files `restic dump` streams out).

RUN = "20261201T030000Z"
DB_ID = "ab" * 32
FILES_ID = "cd" * 32
LIVE = "/home/mastodon/live"


@pytest.fixture
def repository(
    fake_restic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """A repository with one complete run whose dump and manifest agree, and the tool's
    configuration for it (what `main` loads). Returns {cfg, store, dump, manifest}."""
    import hashlib

    store = tmp_path / "store"
    state = tmp_path / "state"
    # Bigger than the tool's read size, so the dump is streamed in several pieces.
    dump = bytes(range(256)) * 9000
    (store / DB_ID).mkdir(parents=True)
    (store / DB_ID / "database.dump").write_bytes(dump)
    env_file = store / FILES_ID / LIVE.lstrip("/") / ".env.production"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("SECRET_KEY_BASE=x\n")
    manifest = {
        "format": 1,
        "run": RUN,
        "institution": "example",
        "host": "h",
        "mastodon_release": "v4.5.2",
        "created_at": "2026-12-01T03:00:00Z",
        "mastodon_dir": LIVE,
        "redis_dump": "/var/lib/redis/dump.rdb",
        "database": {"snapshot": DB_ID[:8], "sha256": hashlib.sha256(dump).hexdigest(),
                     "bytes": len(dump)},
        "rows": {"statuses": 10, "accounts": 3, "users": 2},
        "uploads": {},
    }  # fmt: skip
    manifest_file = store / FILES_ID / str(state).lstrip("/") / "manifest.json"
    manifest_file.parent.mkdir(parents=True)
    manifest_file.write_text(json.dumps(manifest))
    (store / "snapshots.json").write_text(
        json.dumps(
            [
                _snap(RUN, "database", "2026-12-01T03:00:00Z", DB_ID),
                _snap(RUN, "files", "2026-12-01T03:01:00Z", FILES_ID),
            ]
        )
    )
    monkeypatch.setenv("FAKE_RESTIC_STORE", str(store))
    cfg = {
        "repository": "/r", "password_file": "/p", "cache_dir": "/c", "sftp_command": "",
        "state_dir": str(state), "fact_file": str(tmp_path / "facts.d" / "backup.fact"),
        "restore_tmp_dir": str(tmp_path / "restore"), "host": "h", "institution": "example",
        "database": "mastodon_production", "database_role": "mastodon",
        "drill_database": "mastodon_restore_drill",
    }  # fmt: skip
    monkeypatch.setattr(mb, "load_config", lambda: cfg)
    return {"cfg": cfg, "store": store, "dump": dump, "manifest": manifest}


def _fact(repository: dict[str, object]) -> dict[str, object]:
    cfg = repository["cfg"]
    assert isinstance(cfg, dict)
    return dict(json.loads(Path(cfg["fact_file"]).read_text()))


def _last_json(out: str) -> dict[str, object]:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"one JSON object expected on stdout, got {out!r}"
    return dict(json.loads(lines[0]))


def test_verify_streams_the_stored_dump_and_records_the_run_as_verified(
    repository: dict[str, object], fake_restic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    assert mb.main(["verify", "--snapshot", RUN]) == 0
    result = _last_json(capsys.readouterr().out)
    dump = repository["dump"]
    assert isinstance(dump, bytes)
    verified_at = result.pop("verified_at")
    assert result == {
        "run": RUN,
        "created_at": "2026-12-01T03:00:00Z",
        "mastodon_release": "v4.5.2",
        "database": {
            "snapshot": DB_ID,
            "sha256": hashlib.sha256(dump).hexdigest(),
            "bytes": len(dump),
        },
        "files": {"snapshot": FILES_ID},
        "rows": 15,
        "verified": True,
    }
    fact = _fact(repository)
    assert fact["last_verified_run"] == RUN and fact["last_verified_result"] == "ok"
    assert fact["last_verified_at"] == verified_at and fact["last_verified_error"] == ""
    # What restic was asked to read: the manifest, .env.production and the dump, nothing else.
    cfg = repository["cfg"]
    assert isinstance(cfg, dict)
    dumped = [c[c.index("dump") + 1 :] for c in _calls(fake_restic) if "dump" in c]
    assert sorted(dumped) == sorted(
        [
            [FILES_ID, f"{cfg['state_dir']}/manifest.json"],
            [FILES_ID, f"{LIVE}/.env.production"],
            [DB_ID, "/database.dump"],
        ]
    )
    # Streamed through the hash: no copy of the dump anywhere on disk.
    assert not Path(cfg["restore_tmp_dir"]).exists()
    assert not list(Path(cfg["state_dir"]).glob("*.dump"))


def test_verify_latest_names_the_newest_complete_run(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert mb.main(["verify"]) == 0
    assert _last_json(capsys.readouterr().out)["run"] == RUN


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("corrupt", "the stored database dump's sha256 is"),
        ("truncate", "the stored database dump has 2303999 bytes, the manifest recorded 2304000"),
        ("replace", "sha256"),
    ],
)
def test_verify_fails_when_the_stored_dump_is_not_the_one_recorded(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str], change: str, words: str
) -> None:
    store = repository["store"]
    assert isinstance(store, Path)
    stored = store / DB_ID / "database.dump"
    data = bytearray(stored.read_bytes())
    if change == "corrupt":
        data[1000] ^= 0xFF  # one flipped byte, same size
    elif change == "truncate":
        del data[-1:]
    else:
        data = bytearray(b"PGDMP another database's dump")
    stored.write_bytes(bytes(data))
    assert mb.main(["verify", "--snapshot", RUN]) == 1
    captured = capsys.readouterr()
    result = _last_json(captured.out)
    assert result["verified"] is False and result["run"] == RUN
    assert words in str(result["error"])
    assert f"run {RUN}" in str(result["error"]) and "does not match its manifest" in str(
        result["error"]
    )
    assert "verify FAILED" in captured.err
    fact = _fact(repository)
    assert fact["last_verified_result"] == "failed"
    assert fact["last_verified_run"] == RUN
    assert words in str(fact["last_verified_error"])
    if change == "corrupt":  # same size: only the checksum differs, and only it is named
        assert "bytes" not in str(fact["last_verified_error"])


def test_verify_fails_when_the_files_snapshot_lacks_env_production(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    store = repository["store"]
    assert isinstance(store, Path)
    (store / FILES_ID / LIVE.lstrip("/") / ".env.production").unlink()
    assert mb.main(["verify", "--snapshot", RUN]) == 1
    error = str(_last_json(capsys.readouterr().out)["error"])
    assert f"holds no {LIVE}/.env.production" in error
    assert _fact(repository)["last_verified_result"] == "failed"


def test_verify_fails_when_the_run_has_no_manifest(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repository["cfg"]
    store = repository["store"]
    assert isinstance(cfg, dict) and isinstance(store, Path)
    (store / FILES_ID / cfg["state_dir"].lstrip("/") / "manifest.json").unlink()
    assert mb.main(["verify", "--snapshot", RUN]) == 1
    assert "holds no readable manifest.json" in str(_last_json(capsys.readouterr().out)["error"])


def test_verify_fails_when_the_manifest_names_another_database_snapshot(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, store, manifest = repository["cfg"], repository["store"], repository["manifest"]
    assert isinstance(cfg, dict) and isinstance(store, Path) and isinstance(manifest, dict)
    manifest["database"] = {**manifest["database"], "snapshot": "ef012345"}
    path = store / FILES_ID / cfg["state_dir"].lstrip("/") / "manifest.json"
    path.write_text(json.dumps(manifest))
    assert mb.main(["verify", "--snapshot", RUN]) == 1
    error = str(_last_json(capsys.readouterr().out)["error"])
    assert "the manifest names database snapshot 'ef012345', the run's is abababab" in error


def test_verify_of_an_unknown_run_fails_and_says_so(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert mb.main(["verify", "--snapshot", "20250101T000000Z"]) == 1
    result = _last_json(capsys.readouterr().out)
    assert "no complete backup run '20250101T000000Z'" in str(result["error"])
    fact = _fact(repository)
    assert fact["last_verified_run"] == "20250101T000000Z"
    assert fact["last_verified_result"] == "failed"


def test_verify_refuses_while_another_job_holds_the_lock(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = repository["cfg"]
    assert isinstance(cfg, dict)
    with mb.exclusive(cfg):
        assert mb.main(["verify", "--snapshot", RUN]) == 1
    error = str(_last_json(capsys.readouterr().out)["error"])
    assert "another mastodon-backup job is running" in error


def test_writes_lost_counts_rows_beyond_the_backup_per_table() -> None:
    backed_up = {"statuses": 10, "accounts": 3, "users": 2}
    current = {"statuses": 14, "accounts": 3, "users": 1, "new_table": 5}
    lost = mb.writes_lost(backed_up, current)
    # Fewer rows now (users) lose nothing; a table the backup does not know counts whole.
    assert lost == {"new_table": 5, "statuses": 4}
    assert mb.writes_lost(backed_up, backed_up) == {}
    assert mb.writes_lost(backed_up, {}) == {}


class _Database:
    """The PostgreSQL side of a restore, recorded: the live database's rows before the swap,
    the restored rows after it."""

    def __init__(self, before: dict[str, int] | Exception, after: dict[str, int]) -> None:
        self.before, self.after = before, after
        self.events: list[str] = []
        self.swapped = False

    def restore_database(
        self, cfg: object, restic: object, run: dict[str, str], manifest: object,
        target: str, jobs: int, swap: bool = True,
    ) -> str:  # fmt: skip
        assert swap is False  # the swap waits for the count
        self.events.append(f"restore {run['run']} {target} jobs={jobs}")
        return f"{target}_restoring"

    def database_exists(self, name: str) -> bool:
        return True

    def database_counts(self, name: str) -> dict[str, int]:
        self.events.append(f"count {name}")
        if self.swapped:
            return self.after
        if isinstance(self.before, Exception):
            raise self.before
        return self.before

    def swap_database(self, staging: str, target: str) -> None:
        self.events.append(f"swap {staging} {target}")
        self.swapped = True

    def psql_value(self, database: str, sql: str) -> str:
        self.events.append(sql)
        return ""


def _no_files_no_redis(*_: object, **__: object) -> None:
    raise AssertionError("a database-only restore touched the files or Redis")


@pytest.fixture
def database(repository: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> _Database:
    db = _Database(
        before={"statuses": 14, "accounts": 3, "users": 1, "markers": 2},
        after={"statuses": 10, "accounts": 3, "users": 2},
    )
    for name in ("restore_database", "database_exists", "database_counts", "swap_database",
                 "psql_value"):  # fmt: skip
        monkeypatch.setattr(mb, name, getattr(db, name))
    for name in ("restore_files", "_install_files", "rebuild_append_only_file", "redis_save"):
        monkeypatch.setattr(mb, name, _no_files_no_redis)
    return db


def test_a_database_only_restore_counts_the_writes_it_undoes_before_the_swap(
    repository: dict[str, object], database: _Database, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = mb.main(["restore", "--database-only", "--snapshot", RUN, "--jobs", "3"])
    assert rc == 0
    report = _last_json(capsys.readouterr().out)
    assert database.events == [
        f"restore {RUN} mastodon_production jobs=3",
        "count mastodon_production",  # the live database, before the swap
        "swap mastodon_production_restoring mastodon_production",
        "count mastodon_production",  # the restored one
    ]
    assert report == {
        "scope": "database",
        "run": RUN,
        "created_at": "2026-12-01T03:00:00Z",
        "mastodon_release": "v4.5.2",
        "snapshots": {"database": DB_ID, "files": FILES_ID},
        "tables": 3,
        "rows_expected": 15,
        "rows_found": 15,
        "rows_lost": 0,
        "tables_differing": {},
        "rows_before_restore": 20,
        "writes_lost": 6,
        "writes_lost_by_table": {"markers": 2, "statuses": 4},
    }
    fact = _fact(repository)
    assert fact["last_restore_result"] == "ok" and fact["last_restore_run"] == RUN
    assert fact["last_restore_scope"] == "database" and fact["last_restore_error"] == ""


def test_a_database_only_restore_that_cannot_count_leaves_the_database_as_it_was(
    repository: dict[str, object], database: _Database, capsys: pytest.CaptureFixture[str]
) -> None:
    database.before = mb.BackupError("PostgreSQL: connection refused")
    assert mb.main(["restore", "--database-only", "--snapshot", RUN]) == 1
    assert not database.swapped
    assert 'DROP DATABASE IF EXISTS "mastodon_production_restoring"' in database.events
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "counting the rows of mastodon_production before the swap" in captured.err
    fact = _fact(repository)
    assert fact["last_restore_result"] == "failed" and fact["last_restore_scope"] == "database"
    assert "left as it was" in str(fact["last_restore_error"])


def test_a_database_only_restore_missing_rows_of_the_backup_fails(
    repository: dict[str, object], database: _Database, capsys: pytest.CaptureFixture[str]
) -> None:
    database.after = {"statuses": 9, "accounts": 3, "users": 2}
    assert mb.main(["restore", "--database-only", "--snapshot", RUN]) == 1
    captured = capsys.readouterr()
    report = _last_json(captured.out)
    assert report["rows_lost"] == 1 and report["tables_differing"] == {"statuses": 1}
    assert "1 rows missing" in captured.err
    fact = _fact(repository)
    assert fact["last_restore_result"] == "failed" and fact["last_restore_run"] == RUN


def test_a_full_restore_records_its_scope(
    repository: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    store = repository["store"]
    assert isinstance(store, Path)
    (store / "snapshots.json").write_text("[]")
    assert mb.main(["restore", "--snapshot", RUN]) == 1
    fact = _fact(repository)
    assert fact["last_restore_scope"] == "full" and fact["last_restore_result"] == "failed"
    assert "holds no complete backup run" in str(fact["last_restore_error"])
