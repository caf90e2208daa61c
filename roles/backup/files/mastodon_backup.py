#!/usr/bin/python3
"""mastodon-backup: restic backups of one Mastodon server, their restore, and the restore drill.

Installed by roles/backup, configured by /etc/mastodon-backup/config.json (no secret in it: the
restic and Redis passwords are files beside it). Run by the units mastodon-backup.service
(daily), mastodon-backup-check.service (weekly), mastodon-backup-freshness.service (hourly) and
mastodon-backup-drill.service (monthly), by playbooks/backup.yml, restore.yml and
restore-drill.yml, and by the role's entry points snapshot (a backup now, then `verify` of it)
and restore_database (`restore --database-only`, the rollback of an upgrade).

A backup run makes two restic snapshots that share the tag run=<id>:
  part=database  the PostgreSQL dump (pg_dump -Fc), streamed into restic, no temporary copy;
  part=files     .env.production, the uploads under public/system without the remote media
                 cache, Redis's dump.rdb after a completed BGSAVE, and manifest.json: the row
                 count of every table (counted in the dump's own transaction snapshot), the
                 checksum of every upload, the dump's checksum and the Mastodon release.
Both carry institution=, mastodon= and host= tags. A run is complete when both exist; restores
and the freshness check only ever use complete runs. What a run did is kept in the local fact
/etc/ansible/facts.d/backup.fact, which the fleet report reads.

Exit status: 0 good; 1 failed (the message says why, also in the fact); 2 bad usage.
"""

# This program runs fixed system tools (restic, pg_dump, psql, redis-cli, systemd-run) by name
# from the root PATH with arguments it builds itself, and uses assert only to narrow the types
# of Popen's pipes; so subprocess calls and asserts are allowed here.
# ruff: noqa: S603, S607, S101

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Protocol

CONFIG = Path(os.environ.get("MASTODON_BACKUP_CONFIG", "/etc/mastodon-backup/config.json"))
DUMP_NAME = "database.dump"
CHUNK = 1 << 20


class BackupError(Exception):
    """A failure whose message tells the operator what happened and what to do."""


class RepositoryError(BackupError):
    """The repository cannot be used: state is one of repo_state's words."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


# restic's exit codes; 10-12 exist from restic 0.17 on, 0.14 says the same on stderr only.
RESTIC_EXIT = {
    3: "some source files could not be read, so the snapshot is incomplete",
    10: "there is no restic repository at {repo}: run playbooks/backup.yml to initialise it",
    11: (
        "the repository {repo} is locked by another restic process (a backup, check or prune "
        "may be running; `restic unlock` removes only the locks of dead processes)"
    ),
    12: (
        "wrong restic password for {repo}: it must be the inventory's backup_restic_password "
        "(from the vault); a repository that exists is never initialised again"
    ),
    130: "restic was interrupted",
}
# What restic prints on stderr for the same cases (0.14 exits 1 for all of them), and for the
# two it never gives a code of its own.
RESTIC_STDERR: list[tuple[re.Pattern[str], int | str]] = [
    (re.compile(r"wrong password or no key found", re.I), 12),
    (
        re.compile(r"unable to create lock|repository is already locked|locked exclusively", re.I),
        11,
    ),
    (re.compile(r"no space left on device|disk quota exceeded", re.I), "full"),
    # OpenSSH's SFTP server answers every failed write, a full disk included, with the one
    # generic status "Failure": restic cannot tell more, so neither can this message.
    (re.compile(r'Write: sftp: "Failure"|SSH_FX_FAILURE', re.I), "refused"),
    (
        re.compile(
            r"unable to start the sftp session|connection refused|no route to host|"
            r"could not resolve|network is unreachable|connection timed out|host key verification",
            re.I,
        ),
        "unreachable",
    ),
    (
        re.compile(
            r"Is there a repository at the following location|repository does not exist", re.I
        ),
        10,
    ),
]
RESTIC_KIND_MESSAGE = {
    "full": "the backup target {repo} is full (no space left on device); free space there",
    "refused": (
        "the backup server refused a write to {repo} (over SFTP this is how a full disk shows): "
        "check the free space and the permissions on the backup server"
    ),
    "unreachable": (
        "the repository {repo} cannot be reached (network, SSH host key or the backup server's "
        "login); check that the backup server is up and accepts this host's key"
    ),
}


def explain_restic(rc: int, stderr: str, repo: str) -> tuple[str, str]:
    """(kind, message) for a failed restic call: kind is the exit code's name or a word."""
    for pattern, kind in RESTIC_STDERR:
        if pattern.search(stderr):
            if isinstance(kind, int):
                return str(kind), RESTIC_EXIT[kind].format(repo=repo)
            return str(kind), RESTIC_KIND_MESSAGE[str(kind)].format(repo=repo)
    if rc in RESTIC_EXIT:
        return str(rc), RESTIC_EXIT[rc].format(repo=repo)
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    return "failed", f"restic failed (exit {rc}): {last or 'no message'}"


# --------------------------------------------------------------------------- configuration


SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    try:
        cfg: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: run playbooks/backup.yml first") from None
    for key in ("database", "database_role", "drill_database"):
        # Names go into SQL text below: only plain identifiers are accepted.
        if not SQL_NAME.match(str(cfg.get(key, ""))):
            raise BackupError(
                f"{path}: {key} must be a plain lower-case SQL name, got {cfg.get(key)!r}"
            )
    return cfg


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(text: str) -> dt.datetime:
    """restic's RFC 3339 time with nanoseconds ("2026-12-01T15:41:01.276783356Z")."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise BackupError(f"unexpected time {text!r} from restic")
    base, frac, zone = match.groups()
    micro = (frac or "0")[:6].ljust(6, "0")
    return dt.datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")


# --------------------------------------------------------------------------- status fact


def update_fact(cfg: dict[str, Any], **values: Any) -> None:
    """Merge values into the backup local fact, written atomically (never half a file)."""
    path = Path(cfg["fact_file"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fact = read_fact(cfg)
    fact.update(values)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
        json.dump(fact, tmp, indent=2, sort_keys=True)
        tmp.write("\n")
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def read_fact(cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        fact: dict[str, Any] = json.loads(Path(cfg["fact_file"]).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return fact


def journal(level: str, message: str) -> None:
    """One line for the journal: systemd reads the <N> prefix as the syslog priority."""
    prefix = {"err": "<3>", "warning": "<4>", "info": "<6>"}[level]
    print(f"{prefix}mastodon-backup: {message}", file=sys.stderr)  # stdout is for JSON


# --------------------------------------------------------------------------- restic


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class Restic:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.repo = cfg["repository"]
        self._version: tuple[int, ...] | None = None

    def base(self) -> list[str]:
        cmd = ["restic", "--repo", self.repo, "--password-file", self.cfg["password_file"]]
        cmd += ["--cache-dir", self.cfg["cache_dir"]]
        if self.cfg.get("sftp_command"):
            cmd += ["--option", f"sftp.command={self.cfg['sftp_command']}"]
        return cmd

    def run(
        self, *args: str, timeout: int = 3600, unlock_stale: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """One restic command; with unlock_stale, a command refused for a lock is tried once
        more after `restic unlock`, which removes only the locks of processes that are gone (a
        job killed half-way): a live job's lock stays, and the command fails on it."""
        proc = subprocess.run(
            [*self.base(), *args], capture_output=True, text=True, check=False, timeout=timeout
        )
        if proc.returncode != 0:
            kind, message = explain_restic(proc.returncode, proc.stderr, self.repo)
            if unlock_stale and kind == "11":
                self.run("unlock")
                return self.run(*args, timeout=timeout)
            raise BackupError(message)
        return proc

    def version(self) -> tuple[int, ...]:
        if self._version is None:
            out = subprocess.run(
                ["restic", "version"], capture_output=True, text=True, check=True, timeout=60
            ).stdout
            match = re.search(r"restic (\d+)\.(\d+)\.(\d+)", out)
            if not match:
                raise BackupError(f"cannot read restic's version from {out!r}")
            self._version = tuple(int(x) for x in match.groups())
        return self._version

    def snapshots(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.run("snapshots", "--json").stdout or "[]")
        return found

    def dump_to(self, snapshot: str, path: str, sink: Sink) -> tuple[str, int]:
        """Stream one stored file into sink; (sha256, size)."""
        proc = subprocess.Popen(
            [*self.base(), "dump", snapshot, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        err = Drain(proc.stderr)
        digest, size = hashlib.sha256(), 0
        while chunk := proc.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            sink.write(chunk)
        rc = proc.wait()
        if rc != 0:
            _, message = explain_restic(rc, err.text(), self.repo)
            raise BackupError(f"reading {path} from snapshot {snapshot}: {message}")
        return digest.hexdigest(), size


class Drain(threading.Thread):
    """Reads a pipe to its end in the background, so neither side of a stream ever blocks."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe, self.data = pipe, bytearray()
        self.start()

    def run(self) -> None:
        while chunk := self.pipe.read(65536):
            self.data.extend(chunk)

    def text(self) -> str:
        self.join(timeout=600)
        return self.data.decode("utf-8", "replace")


REPO_STATES = {"10": "missing", "11": "locked", "12": "wrong-password"}


def open_repository(restic: Restic, institution: str) -> list[dict[str, Any]]:
    """The repository's snapshots, after proving that it opens with the password and holds no
    other institution's snapshots. Raises RepositoryError (state, message) otherwise. One restic
    call: every restic process pays the repository key's scrypt derivation."""
    proc = subprocess.run(
        [*restic.base(), "snapshots", "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        kind, message = explain_restic(proc.returncode, proc.stderr, restic.repo)
        raise RepositoryError(REPO_STATES.get(kind, kind), message)
    try:
        snapshots: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise RepositoryError("failed", f"restic listed no snapshots of {restic.repo}") from None
    others = sorted(
        {
            tag
            for snap in snapshots
            for tag in snap.get("tags") or []
            if tag.startswith("institution=")
        }
        - {f"institution={institution}"}
    )
    if others:
        raise RepositoryError(
            "foreign",
            f"the repository {restic.repo} holds snapshots of {', '.join(others)}: one "
            "institution's repository is never used for another; configure its own",
        )
    return snapshots


def repo_state(restic: Restic, institution: str) -> dict[str, str]:
    """ok | missing | wrong-password | foreign | unreachable | locked | failed, with a message."""
    try:
        open_repository(restic, institution)
    except RepositoryError as err:
        return {"state": err.state, "message": str(err)}
    return {
        "state": "ok",
        "message": f"repository {restic.repo} opens with the configured password",
    }


def runs(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete runs (both parts), newest first: {run, time, database, files, tags}."""
    by_run: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        tags = dict(t.split("=", 1) for t in snap.get("tags") or [] if "=" in t)
        if "run" not in tags or tags.get("part") not in ("database", "files"):
            continue
        entry = by_run.setdefault(tags["run"], {"run": tags["run"], "tags": tags})
        entry[tags["part"]] = snap["id"]
        when = parse_time(snap["time"])
        entry["time"] = max(entry.get("time", when), when)
    complete = [r for r in by_run.values() if "database" in r and "files" in r]
    return sorted(complete, key=lambda r: r["time"], reverse=True)


def resolve(restic: Restic, wanted: str) -> dict[str, Any]:
    """The complete run named by `latest`, a run id, or a snapshot id (or prefix) of it."""
    snapshots = restic.snapshots()
    complete = runs(snapshots)
    if not complete:
        raise BackupError(f"the repository {restic.repo} holds no complete backup run")
    if wanted == "latest":
        return complete[0]
    exact = [run for run in complete if run["run"] == wanted]
    if exact:
        return exact[0]
    if len(wanted) < 4:
        raise BackupError(
            f"give `latest`, a run id or at least 4 characters of a snapshot id, not {wanted!r}"
        )
    matches = [
        run
        for run in complete
        if wanted == run["run"]
        or run["database"].startswith(wanted)
        or run["files"].startswith(wanted)
    ]
    if len(matches) > 1:
        raise BackupError(
            f"{wanted!r} names more than one run: {', '.join(r['run'] for r in matches)}"
        )
    if matches:
        return matches[0]
    raise BackupError(
        f"no complete backup run {wanted!r} in {restic.repo} (newest: {complete[0]['run']}); "
        "give `latest`, a run id or a snapshot id"
    )


# --------------------------------------------------------------------------- PostgreSQL


COUNT_SQL = """SELECT c.relname || E'\\t' || (xpath('/row/n/text()', query_to_xml(
  format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' ORDER BY c.relname;"""


# psql as postgres (peer authentication on the socket), unaligned, stopping at the first error.
PSQL = ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1"]


class PsqlSession:
    """One psql session as postgres: a REPEATABLE READ transaction whose snapshot pg_dump
    shares, so the row counts recorded are exactly those of the dump."""

    def __init__(self, database: str) -> None:
        self.proc = subprocess.Popen(
            [*PSQL, "-d", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.err = Drain(self.proc.stderr.buffer)  # type: ignore[attr-defined]

    def ask(self, sql: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(f"{sql}\n\\echo __END__\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == "__END__":
                return lines
            lines.append(line.rstrip("\n"))
        self.proc.wait(timeout=60)
        raise BackupError(f"PostgreSQL: {self.err.text().strip() or 'psql ended early'}")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("COMMIT;\n\\q\n")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def row_counts(session: PsqlSession) -> dict[str, int]:
    counts = {}
    for line in session.ask(COUNT_SQL):
        name, _, value = line.partition("\t")
        counts[name] = int(value)
    return counts


def psql_value(database: str, sql: str) -> str:
    proc = subprocess.run(
        [*PSQL, "-d", database, "-c", sql],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise BackupError(f"PostgreSQL ({database}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def database_exists(name: str) -> bool:
    sql = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608 (SQL_NAME only)
    return psql_value("postgres", sql) == "1"


def database_counts(name: str) -> dict[str, int]:
    session = PsqlSession(name)
    try:
        session.ask("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;")
        return row_counts(session)
    finally:
        session.close()


# --------------------------------------------------------------------------- backup


def backup_database(cfg: dict[str, Any], restic: Restic, tags: list[str]) -> dict[str, Any]:
    """Dump PostgreSQL into restic; return the snapshot id, the dump's checksum and the row
    counts. A dump that failed or was not stored whole never stays a snapshot. pg_dump -Fc
    -Z0: restic compresses, and an uncompressed dump deduplicates from one night to the next
    where a compressed one changes throughout."""
    session = PsqlSession(cfg["database"])
    try:
        session.ask("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;")
        (snapshot_name,) = session.ask("SELECT pg_export_snapshot();")
        counts = row_counts(session)
        dump = [
            "runuser", "-u", "postgres", "--", "pg_dump", "-Fc",
            "-Z0", f"--snapshot={snapshot_name}",
            cfg["database"],
        ]  # fmt: skip
        tag_args = ["--tag", ",".join([*tags, "part=database"])]
        if restic.version() >= (0, 17, 0):
            proc = subprocess.run(
                [*restic.base(), "backup", "--json", "--stdin-from-command",
                 "--stdin-filename", DUMP_NAME, *tag_args, "--", *dump],
                capture_output=True, text=True, check=False, timeout=6 * 3600,
            )  # fmt: skip
            if proc.returncode != 0:
                _, message = explain_restic(proc.returncode, proc.stderr, restic.repo)
                raise BackupError(f"database dump: {message}")
            snapshot_id = summary_id(proc.stdout)
            sent: tuple[str, int, int] | None = None
        else:
            snapshot_id, sent_sha, sent_size, stored = _relay_dump(restic, dump, tag_args)
            sent = (sent_sha, sent_size, stored)
    finally:
        session.close()
    try:
        if sent is None:
            # --stdin-from-command: read the stored dump back for its checksum.
            stored_sha, stored_size = restic.dump_to(snapshot_id, f"/{DUMP_NAME}", _NullSink())
        else:
            # The relay hashed every byte it handed restic; restic's summary of the snapshot
            # must count exactly that many stored (restic addresses the content by SHA-256).
            stored_sha, stored_size = sent[0], sent[2]
            if stored_size != sent[1]:
                raise BackupError(
                    f"restic stored {stored_size} bytes of a {sent[1]}-byte database dump"
                )
        if stored_size == 0:
            raise BackupError("the stored database dump is empty")
    except BackupError:
        forget(restic, [snapshot_id])
        raise
    return {"snapshot": snapshot_id, "sha256": stored_sha, "bytes": stored_size, "rows": counts}


def _relay_dump(restic: Restic, dump: list[str], tag_args: list[str]) -> tuple[str, str, int, int]:
    """restic < 0.17: pg_dump | restic --stdin through this process, which sees pg_dump's exit
    status (plain --stdin would store a failed dump as a good snapshot) and hashes the bytes."""
    producer = subprocess.Popen(dump, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consumer = subprocess.Popen(
        [*restic.base(), "backup", "--json", "--stdin", "--stdin-filename", DUMP_NAME, *tag_args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert producer.stdout and producer.stderr and consumer.stdin and consumer.stdout
    assert consumer.stderr
    dump_err, out, err = Drain(producer.stderr), Drain(consumer.stdout), Drain(consumer.stderr)
    digest, size, restic_died = hashlib.sha256(), 0, False
    try:
        while chunk := producer.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            consumer.stdin.write(chunk)
    except BrokenPipeError:
        restic_died = True  # restic stopped reading: its error is the cause, not pg_dump's
        producer.kill()
    finally:
        with contextlib.suppress(BrokenPipeError):
            consumer.stdin.close()
    dump_rc, restic_rc = producer.wait(), consumer.wait()
    closing = summary(out.text())
    snapshot_id = str(closing.get("snapshot_id") or "")
    if dump_rc != 0 or restic_rc != 0:
        if snapshot_id:
            forget(restic, [snapshot_id])
        if dump_rc != 0 and not restic_died:  # the cause, even if restic refused an empty one
            raise BackupError(
                f"pg_dump failed (exit {dump_rc}): {dump_err.text().strip() or 'no message'}; "
                "the partial dump was not kept"
            )
        _, message = explain_restic(restic_rc, err.text(), restic.repo)
        raise BackupError(f"database dump: {message}")
    if not snapshot_id:
        raise BackupError("restic stored the database dump but reported no snapshot id")
    # restic's own count of the bytes it read and stored for the snapshot it reports.
    return snapshot_id, digest.hexdigest(), size, int(closing.get("total_bytes_processed", -1))


class _NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def summary(stdout: str) -> dict[str, Any]:
    """restic backup --json's closing summary message ({} when it printed none)."""
    for line in stdout.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("message_type") == "summary":
                return message
    return {}


def summary_id(stdout: str, missing_ok: bool = False) -> str:
    found = summary(stdout).get("snapshot_id")
    if found:
        return str(found)
    if missing_ok:
        return ""
    raise BackupError("restic reported no snapshot id")


def forget(restic: Restic, ids: list[str]) -> None:
    if ids:
        with contextlib.suppress(BackupError):
            restic.run("forget", *ids, unlock_stale=True)


def redis_save(cfg: dict[str, Any]) -> Path:
    """BGSAVE, then wait (bounded) until Redis reports a newer, successful save."""
    env = dict(os.environ)
    password_file = Path(cfg["redis_password_file"])
    if password_file.exists() and password_file.read_text(encoding="utf-8").strip():
        env["REDISCLI_AUTH"] = password_file.read_text(encoding="utf-8").strip()

    def cli(*args: str) -> str:
        proc = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(cfg["redis_port"]), "--no-auth-warning",
             *args],
            capture_output=True, text=True, check=False, env=env, timeout=60,
        )  # fmt: skip
        if proc.returncode != 0 or proc.stdout.startswith(("ERR", "NOAUTH", "WRONGPASS")):
            raise BackupError(f"Redis {args[0]}: {(proc.stdout + proc.stderr).strip()}")
        return proc.stdout.strip()

    def persistence() -> dict[str, str]:
        return dict(
            line.split(":", 1) for line in cli("INFO", "persistence").splitlines() if ":" in line
        )

    saves_before = persistence().get("rdb_saves")  # Redis 7 counts saves; older ones do not
    before = int(cli("LASTSAVE"))
    if saves_before is None:
        time.sleep(1.1)  # LASTSAVE counts seconds: a save in the same second would look old
    answer = cli("BGSAVE")
    if "started" not in answer and "scheduled" not in answer and "in progress" not in answer:
        raise BackupError(f"Redis BGSAVE: {answer}")
    deadline = time.monotonic() + cfg.get("redis_save_timeout", 600)
    while time.monotonic() < deadline:
        info = persistence()
        newer = (
            int(info["rdb_saves"]) > int(saves_before)
            if saves_before is not None and "rdb_saves" in info
            else int(info.get("rdb_last_save_time", 0)) > before
        )
        if info.get("rdb_bgsave_in_progress") == "0" and newer:
            if info.get("rdb_last_bgsave_status") != "ok":
                raise BackupError("Redis BGSAVE failed (rdb_last_bgsave_status is not ok)")
            return Path(cfg["redis_data_dir"]) / "dump.rdb"
        time.sleep(0.1)
    raise BackupError("Redis BGSAVE did not finish in time")


def upload_checksums(system_dir: Path, cache_file: Path | None = None) -> dict[str, str]:
    """sha256 of every upload under public/system, the remote media cache left out. With a
    cache file, a file whose size, modification time and inode are unchanged since the last run
    keeps its checksum (uploads are written once), as restic itself decides what to read."""
    sums: dict[str, str] = {}
    known: dict[str, list[Any]] = {}
    if cache_file is not None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            known = json.loads(cache_file.read_text(encoding="utf-8"))
    seen: dict[str, list[Any]] = {}
    if not system_dir.is_dir():
        return sums
    for root, dirs, files in os.walk(system_dir):
        if Path(root) == system_dir:
            dirs[:] = [d for d in dirs if d != "cache"]
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(system_dir).as_posix()
            st = path.stat()
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            old = known.get(rel)
            sums[rel] = str(old[3]) if old and old[:3] == stamp else file_sha256(path)
            seen[rel] = [*stamp, sums[rel]]
    if cache_file is not None:
        cache_file.write_text(json.dumps(seen), encoding="utf-8")
    return sums


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def mastodon_release(cfg: dict[str, Any]) -> str:
    try:
        fact = json.loads(Path(cfg["mastodon_fact"]).read_text(encoding="utf-8"))
        return str(fact.get("release") or "unknown")
    except (FileNotFoundError, json.JSONDecodeError):
        return "unknown"


def job_running(cfg: dict[str, Any]) -> bool:
    """Whether a mastodon-backup job holds the lock now."""
    lock_path = Path(cfg["state_dir"]) / "lock"
    if not lock_path.exists():
        return False
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def exclusive(cfg: dict[str, Any]) -> Iterator[None]:
    """One mastodon-backup job at a time on this host (timer and playbook alike)."""
    lock_path = Path(cfg["state_dir"]) / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError("another mastodon-backup job is running on this host") from None
        yield


def cmd_run(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    restic = Restic(cfg)
    started = utcnow()
    try:
        with exclusive(cfg):
            update_fact(cfg, last_attempt_at=iso(started), last_result="running")
            result = _run(cfg, restic, started)
    except (BackupError, OSError, subprocess.SubprocessError, ValueError) as err:
        message = str(err) if isinstance(err, BackupError) else f"unexpected {err!r}"
        update_fact(cfg, last_result="failed", last_error=message, last_failed_at=iso(utcnow()))
        journal("err", f"backup FAILED: {message}")
        return 1
    update_fact(cfg, last_result="ok", last_error="", **result)
    journal("info", f"backup {result['last_good_run']} done: {result['last_good_snapshots']}")
    return 0


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(cfg: dict[str, Any], restic: Restic, started: dt.datetime) -> dict[str, Any]:
    try:
        before = open_repository(restic, cfg["institution"])
    except RepositoryError as err:
        if err.state != "locked":
            raise
        # An exclusive lock blocks a backup; `unlock` removes only the locks of processes that
        # are gone (a prune killed half-way). A live one stays, and this run fails on it.
        restic.run("unlock")
        before = open_repository(restic, cfg["institution"])
    run_id = started.strftime("%Y%m%dT%H%M%SZ")
    release = mastodon_release(cfg)
    tags = [
        f"institution={cfg['institution']}",
        f"mastodon={release}",
        f"host={cfg['host']}",
        f"run={run_id}",
    ]
    live = Path(os.path.realpath(cfg["mastodon_dir"]))
    # The uploads: public/system of the release, a link to the directory every release shares
    # (roles/mastodon). restic keeps a link as a link, so it is given the directory itself.
    system = Path(os.path.realpath(live / "public" / "system"))
    # Redis's save and the uploads' checksums need neither the database nor restic: they run
    # beside the dump, on the other core.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rdb_saved = pool.submit(redis_save, cfg)
        uploads = pool.submit(upload_checksums, system, Path(cfg["state_dir"]) / "upload-sums.json")
        try:
            database = backup_database(cfg, restic, tags)
        finally:
            for side in (rdb_saved, uploads):
                with contextlib.suppress(Exception):
                    side.result()
    try:
        rdb = rdb_saved.result()
        manifest = {
            "format": 1,
            "run": run_id,
            "institution": cfg["institution"],
            "host": cfg["host"],
            "mastodon_release": release,
            "created_at": iso(started),
            "mastodon_dir": str(live),
            "uploads_dir": str(system),
            "redis_dump": str(rdb),
            "database": {k: database[k] for k in ("snapshot", "sha256", "bytes")},
            "rows": database["rows"],
            "uploads": uploads.result(),
        }
        manifest_path = Path(cfg["state_dir"]) / "manifest.json"
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        paths = [str(live / ".env.production"), str(rdb), str(manifest_path)]
        if system.is_dir():
            paths.append(str(system))
        proc = subprocess.run(
            [*restic.base(), "backup", "--json", "--tag", ",".join([*tags, "part=files"]),
             "--exclude", str(system / "cache"), *paths],
            capture_output=True, text=True, check=False, timeout=6 * 3600,
        )  # fmt: skip
        files_id = summary_id(proc.stdout, missing_ok=True)
        if proc.returncode != 0:
            forget(restic, [files_id] if files_id else [])
            _, message = explain_restic(proc.returncode, proc.stderr, restic.repo)
            raise BackupError(f"files: {message}")
    except BackupError:
        forget(restic, [database["snapshot"]])
        raise
    apply_retention(cfg, restic, before)
    return {
        "last_good_run": run_id,
        "last_good_at": iso(started),
        "last_good_snapshots": {"database": database["snapshot"], "files": files_id},
        "last_good_rows": sum(database["rows"].values()),
        "last_good_uploads": len(manifest["uploads"]),
        "mastodon_release": release,
    }


PRUNE_EVERY_DAYS = 7  # the weekly check prunes; see apply_retention


def apply_retention(cfg: dict[str, Any], restic: Restic, before: list[dict[str, Any]]) -> None:
    """The inventory's daily/weekly/monthly counts, then nothing older than the privacy
    policy's retention. Pruning (which rewrites packs) is the weekly check's job, except when a
    snapshot forgotten now is so old that its data would outlive the retention until then.
    `before` is the listing this run started from (the run holds the host's lock, so it holds
    every earlier snapshot of this host; the run's own two are complete and new)."""
    # Parts of runs that never completed (a run killed half-way) would count as a day's newest
    # snapshot in their group and push out that day's complete run: forget them first, with
    # whatever the privacy policy's retention has expired, in one call.
    complete = {snap for run in runs(before) for snap in (run["database"], run["files"])}
    orphans = [
        s for s in before
        if "part=database" in (s.get("tags") or []) or "part=files" in (s.get("tags") or [])
        if s["id"] not in complete and f"host={cfg['host']}" in (s.get("tags") or [])
    ]  # fmt: skip
    limit = utcnow() - dt.timedelta(days=int(cfg["retention_days"]))
    expired = [s for s in before if parse_time(s["time"]) < limit]
    dropped = {s["id"]: s for s in [*orphans, *expired]}
    if dropped:
        restic.run("forget", *dropped, unlock_stale=True)
    keep = cfg["keep"]
    args = ["forget", "--json", "--tag", f"institution={cfg['institution']}",
            "--group-by", "host,paths"]  # fmt: skip
    for period in ("daily", "weekly", "monthly"):
        if int(keep.get(period, 0)) > 0:
            args += [f"--keep-{period}", str(keep[period])]
    out = restic.run(*args, unlock_stale=True).stdout
    groups = json.loads(out[out.index("[") :]) if "[" in out else []
    removed = [snap for group in groups or [] for snap in group.get("remove") or []]
    soon = limit + dt.timedelta(days=PRUNE_EVERY_DAYS)
    if any(parse_time(s["time"]) < soon for s in [*removed, *expired]):
        restic.run("prune", timeout=6 * 3600, unlock_stale=True)


# --------------------------------------------------------------------------- freshness, check


def cmd_freshness(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """Red when the newest complete run in the repository (not in a file) is too old."""
    max_age = float(cfg["max_age_hours"])
    now = utcnow()
    try:
        mine = [
            s for s in Restic(cfg).snapshots() if f"host={cfg['host']}" in (s.get("tags") or [])
        ]
        complete = runs(mine)
        if not complete:
            raise BackupError(f"the repository holds no complete backup run of {cfg['host']}")
        newest = complete[0]
        age = (now - newest["time"]).total_seconds() / 3600
        fresh = age <= max_age
        message = f"newest complete backup {newest['run']} is {age:.1f} h old (limit {max_age:g} h)"
        last = read_fact(cfg)
        if last.get("last_result") == "running" and not job_running(cfg):
            # Killed (SIGKILL, OOM, power) before it could say so: that is a failure too.
            killed = "the backup ended without finishing (killed or crashed)"
            update_fact(
                cfg,
                last_result="failed",
                last_failed_at=last.get("last_attempt_at"),
                last_error=killed,
            )
            last = read_fact(cfg)
        if last.get("last_result") == "failed":
            # A failing backup is loud at once, not only a day later.
            fresh = False
            failed_at, error = last.get("last_failed_at"), last.get("last_error")
            message += f"; the last attempt FAILED at {failed_at}: {error}"
        values: dict[str, Any] = {"age_hours": round(age, 2), "newest_run": newest["run"]}
    except BackupError as err:
        fresh, message, values = False, f"cannot tell the backups' age: {err}", {"age_hours": None}
    update_fact(cfg, fresh=fresh, freshness_message=message, checked_at=iso(now), **values)
    if fresh:
        journal("info", message)
        return 0
    journal("err", f"backups are STALE: {message}")
    return 1


def cmd_check(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    restic = Restic(cfg)
    now = iso(utcnow())
    try:
        with exclusive(cfg):
            with contextlib.suppress(BackupError):
                restic.run("unlock")  # only the locks of processes that are gone
            read = (
                ["--read-data"] if args.read_all else [f"--read-data-subset={cfg['check_subset']}"]
            )
            restic.run("check", *read, timeout=12 * 3600)
            # What the nightly forget left behind, only in a repository that just passed.
            restic.run("prune", timeout=12 * 3600)
    except BackupError as err:
        update_fact(cfg, last_check_at=now, last_check_result="failed", last_check_error=str(err))
        journal("err", f"repository check FAILED: {err}")
        return 1
    update_fact(cfg, last_check_at=now, last_check_result="ok", last_check_error="")
    journal("info", "repository check passed")
    return 0


def cmd_repo_status(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    restic = Restic(cfg)
    state = repo_state(restic, cfg["institution"])
    if state["state"] == "ok":
        remember_repository(cfg, restic)
    elif state["state"] == "missing" and restic.repo in known_repositories(cfg):
        state = {"state": "lost", "message": (
            f"{restic.repo} held this host's backups and cannot be found now: bring it back "
            "instead of starting an empty one")}  # fmt: skip
    print(json.dumps(state))
    return 0 if state["state"] in ("ok", "missing") else 1


def known_repositories(cfg: dict[str, Any]) -> dict[str, Any]:
    """Repositories this host has used: URL -> {id, since}. A repository that goes missing
    later (an unmounted disk, a wrong bucket) is never silently replaced by a new one."""
    try:
        known: dict[str, Any] = json.loads(
            (Path(cfg["state_dir"]) / "repositories.json").read_text(encoding="utf-8")
        )
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return known


def remember_repository(cfg: dict[str, Any], restic: Restic) -> None:
    known = known_repositories(cfg)
    if restic.repo not in known:
        repo_id = json.loads(restic.run("cat", "config").stdout).get("id", "")
        known[restic.repo] = {"id": repo_id, "since": iso(utcnow())}
        path = Path(cfg["state_dir"]) / "repositories.json"
        path.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")


def cmd_init(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    restic = Restic(cfg)
    state = repo_state(restic, cfg["institution"])
    if state["state"] != "missing":
        print(json.dumps(state))
        journal("err", f"not initialising: {state['message']}")
        return 1
    used = known_repositories(cfg).get(restic.repo)
    if used:
        message = (
            f"not initialising: {restic.repo} held this host's backups since {used['since']} "
            f"(repository id {used['id'][:12]}) and cannot be found now; bring it back (mount, "
            "credentials, path) instead of starting an empty one. To really start a new one, "
            f"remove it from {Path(cfg['state_dir']) / 'repositories.json'}"
        )
        print(json.dumps({"state": "missing", "message": message}))
        journal("err", message)
        return 1
    restic.run("init")
    remember_repository(cfg, restic)
    print(json.dumps({"state": "initialised", "message": f"initialised {restic.repo}"}))
    return 0


# --------------------------------------------------------------------------- restore


def read_manifest(restic: Restic, run: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    sink = _Collect()
    restic.dump_to(run["files"], str(Path(cfg["state_dir"]) / "manifest.json"), sink)
    manifest: dict[str, Any] = json.loads(bytes(sink.data))
    return manifest


class _Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data.extend(data)
        return len(data)


def cmd_resolve(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    restic = Restic(cfg)
    run = resolve(restic, args.snapshot)
    manifest = read_manifest(restic, run, cfg)
    print(json.dumps({
        "run": run["run"], "database": run["database"], "files": run["files"],
        "time": iso(run["time"]), "tags": run["tags"],
        "rows": sum(manifest["rows"].values()), "uploads": len(manifest["uploads"]),
        "database_bytes": manifest["database"]["bytes"],
    }))  # fmt: skip
    return 0


def _same_snapshot(recorded: str, actual: str) -> bool:
    """restic names a snapshot by its id or by the id's first 8 characters."""
    return bool(recorded) and (actual.startswith(recorded) or recorded.startswith(actual))


def verify_run(cfg: dict[str, Any], restic: Restic, run: dict[str, Any]) -> dict[str, Any]:
    """Prove one complete run restorable without restoring it: its files snapshot holds the
    manifest and .env.production, and the stored database dump, streamed out of restic and
    hashed (nothing written to disk), is byte for byte the one the manifest recorded."""
    try:
        manifest = read_manifest(restic, run, cfg)
    except BackupError as err:
        raise BackupError(
            f"run {run['run']}: its files snapshot {run['files'][:8]} holds no readable "
            f"manifest.json ({err})"
        ) from err
    except ValueError as err:  # JSON
        raise BackupError(f"run {run['run']}: its manifest.json is not JSON ({err})") from err
    recorded = manifest.get("database") or {}
    problems = []
    if manifest.get("run") != run["run"]:
        problems.append(f"the manifest belongs to run {manifest.get('run')!r}")
    if not _same_snapshot(str(recorded.get("snapshot") or ""), run["database"]):
        problems.append(
            f"the manifest names database snapshot {recorded.get('snapshot')!r}, the run's is "
            f"{run['database'][:8]}"
        )
    env_path = f"{str(manifest.get('mastodon_dir') or '').rstrip('/')}/.env.production"
    try:
        _, env_bytes = restic.dump_to(run["files"], env_path, _NullSink())
        if env_bytes == 0:
            problems.append(f"{env_path} in the files snapshot {run['files'][:8]} is empty")
    except BackupError as err:
        problems.append(f"the files snapshot {run['files'][:8]} holds no {env_path} ({err})")
    try:
        sha, size = restic.dump_to(run["database"], f"/{DUMP_NAME}", _NullSink())
    except BackupError as err:
        raise BackupError(
            f"run {run['run']}: its database snapshot {run['database'][:8]} cannot be read back "
            f"({err}){''.join('; ' + p for p in problems)}"
        ) from err
    if sha != recorded.get("sha256"):
        problems.append(
            f"the stored database dump's sha256 is {sha}, the manifest recorded "
            f"{recorded.get('sha256')}"
        )
    if size != recorded.get("bytes"):
        problems.append(
            f"the stored database dump has {size} bytes, the manifest recorded "
            f"{recorded.get('bytes')}"
        )
    if problems:
        raise BackupError(
            f"run {run['run']} (snapshots {run['database'][:8]} and {run['files'][:8]}) does not "
            f"match its manifest: {'; '.join(problems)}"
        )
    return {
        "run": run["run"],
        "created_at": manifest.get("created_at"),
        "mastodon_release": manifest.get("mastodon_release"),
        "database": {"snapshot": run["database"], "sha256": sha, "bytes": size},
        "files": {"snapshot": run["files"]},
        "rows": sum(manifest.get("rows", {}).values()),
        "verified": True,
    }


def cmd_verify(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """Verify one complete run (latest, a run id or a snapshot id) against its manifest;
    record the result in the fact; print it as one JSON object."""
    restic = Restic(cfg)
    name = args.snapshot
    try:
        with exclusive(cfg):
            run = resolve(restic, args.snapshot)
            name = run["run"]
            result = verify_run(cfg, restic, run)
    except (BackupError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        message = str(err) if isinstance(err, BackupError) else f"unexpected {err!r}"
        update_fact(cfg, last_verified_run=name, last_verified_at=iso(utcnow()),
                    last_verified_result="failed", last_verified_error=message)  # fmt: skip
        print(json.dumps({"run": name, "verified": False, "error": message}, sort_keys=True))
        journal("err", f"verify FAILED: {message}")
        return 1
    result["verified_at"] = iso(utcnow())
    update_fact(cfg, last_verified_run=result["run"], last_verified_at=result["verified_at"],
                last_verified_result="ok", last_verified_error="")  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    journal(
        "info",
        f"backup run {result['run']} verified: database dump {result['database']['bytes']} "
        "bytes, sha256 as recorded",
    )
    return 0


def cmd_holds_data(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """What a restore would overwrite: statuses in the database and uploads on disk."""
    statuses = 0
    if database_exists(cfg["database"]):
        has_table = psql_value(cfg["database"], "SELECT to_regclass('public.statuses') IS NOT NULL")
        if has_table == "t":
            statuses = int(psql_value(cfg["database"], "SELECT count(*) FROM statuses"))
    system = Path(cfg["mastodon_dir"]) / "public" / "system"
    uploads = sum(
        1 for p in system.rglob("*") if p.is_file() and p.relative_to(system).parts[0] != "cache"
    ) if system.is_dir() else 0  # fmt: skip
    print(json.dumps({"statuses": statuses, "uploads": uploads}))
    return 0


def restore_database(
    cfg: dict[str, Any], restic: Restic, run: dict[str, Any], manifest: dict[str, Any],
    target: str, jobs: int, swap: bool = True,
) -> str:  # fmt: skip
    """Into target_restoring first; only a complete pg_restore replaces target, so a failed
    restore leaves the database that was there untouched. With swap=False the caller swaps
    (swap_database) once everything else is in place. Returns the name restored into."""
    need = int(manifest["database"]["bytes"] * 1.1) + (64 << 20)
    tmp_dir = Path(cfg["restore_tmp_dir"])
    tmp_dir.mkdir(parents=True, exist_ok=True)
    # pg_restore runs as postgres and opens the dump (its own, mode 0600) in here: the directory
    # must let it through, without letting anyone list it.
    tmp_dir.chmod(0o711)
    free = shutil.disk_usage(tmp_dir).free
    if free < need:
        raise BackupError(
            f"not enough free space in {tmp_dir} for the database dump: need {need >> 20} MiB, "
            f"{free >> 20} MiB free"
        )
    staging = f"{target}_restoring"
    dump_path = tmp_dir / f"{run['run']}.dump"
    try:
        fd = os.open(dump_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as sink:
            sha, _ = restic.dump_to(run["database"], f"/{DUMP_NAME}", sink)
        if sha != manifest["database"]["sha256"]:
            raise BackupError(
                "the database dump read back differs from the one the backup recorded"
            )
        shutil.chown(dump_path, "postgres")
        role = cfg["database_role"]
        psql_value("postgres", f'DROP DATABASE IF EXISTS "{staging}"')
        _pg(["createdb", "-T", "template0", "-O", role, staging])
        _pg(
            [
                "pg_restore",
                f"--jobs={jobs}",
                "--no-owner",
                f"--role={role}",
                "-d",
                staging,
                str(dump_path),
            ]
        )
        if swap:
            swap_database(staging, target)
    except BackupError:
        with contextlib.suppress(BackupError):
            psql_value("postgres", f'DROP DATABASE IF EXISTS "{staging}"')
        raise
    finally:
        dump_path.unlink(missing_ok=True)
    return target if swap else staging


def swap_database(staging: str, target: str) -> None:
    if database_exists(target):
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 (SQL_NAME only)
            f"WHERE datname = '{target}'"
        )
        psql_value("postgres", terminate)
        psql_value("postgres", f'DROP DATABASE "{target}"')
    psql_value("postgres", f'ALTER DATABASE "{staging}" RENAME TO "{target}"')


def _pg(cmd: list[str]) -> None:
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, check=False,
        timeout=12 * 3600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BackupError(f"{cmd[0]} failed: {proc.stderr.strip()[-2000:]}")


def restore_files(restic: Restic, run: dict[str, Any], staging: Path) -> list[str]:
    """Restore the files snapshot under staging; the paths restic could not restore."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    proc = subprocess.run(
        [*restic.base(), "restore", run["files"], "--target", str(staging)],
        capture_output=True, text=True, check=False, timeout=12 * 3600,
    )  # fmt: skip
    if proc.returncode == 0:
        return []
    kind, message = explain_restic(proc.returncode, proc.stderr, restic.repo)
    failed = re.findall(r"(?:ignoring error for|error for) (\S+?):", proc.stderr)
    if not failed and kind not in ("failed", "3"):
        raise BackupError(f"restoring files: {message}")
    return failed or [message]


def compare_rows(manifest: dict[str, Any], rows: dict[str, int]) -> dict[str, Any]:
    """Rows lost per table against the row counts the backup recorded."""
    rows_lost = {
        table: count - rows.get(table, 0)
        for table, count in manifest["rows"].items()
        if rows.get(table, 0) != count
    }
    return {
        "tables": len(manifest["rows"]),
        "rows_expected": sum(manifest["rows"].values()),
        "rows_found": sum(rows.get(t, 0) for t in manifest["rows"]),
        "rows_lost": sum(max(v, 0) for v in rows_lost.values()),
        "tables_differing": rows_lost,
    }


def compare(manifest: dict[str, Any], rows: dict[str, int], system_dir: Path) -> dict[str, Any]:
    """Rows lost per table and uploads missing or changed, against what the backup recorded."""
    found = upload_checksums(system_dir)
    mismatched = sorted(path for path, sha in manifest["uploads"].items() if found.get(path) != sha)
    cache = system_dir / "cache"
    cached = sum(1 for p in cache.rglob("*") if p.is_file()) if cache.is_dir() else 0
    return {
        **compare_rows(manifest, rows),
        "uploads_expected": len(manifest["uploads"]),
        "upload_mismatches": len(mismatched),
        "mismatched_uploads": mismatched[:50],
        "remote_cache_files_restored": cached,
    }


def cmd_restore(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """The data part of playbooks/restore.yml (which stops and starts the services); with
    --database-only, the database alone (tasks/restore_database.yml, a rollback)."""
    if getattr(args, "database_only", False):
        return restore_database_only(cfg, args)
    restic = Restic(cfg)
    try:
        with exclusive(cfg):
            run = resolve(restic, args.snapshot)
            manifest = read_manifest(restic, run, cfg)
            staging = Path(cfg["restore_tmp_dir"]) / f"files-{run['run']}"
            failed = restore_files(restic, run, staging)
            if failed:
                raise BackupError(f"restic could not restore: {', '.join(failed[:10])}")
            # The database into a scratch name, then the files, then the swap: a failure before
            # the swap leaves the server's database as it was.
            scratch = restore_database(
                cfg, restic, run, manifest, cfg["database"], args.jobs, swap=False
            )
            try:
                _install_files(cfg, manifest, staging)
            except BaseException:
                with contextlib.suppress(BackupError):
                    psql_value("postgres", f'DROP DATABASE IF EXISTS "{scratch}"')
                raise
            swap_database(scratch, cfg["database"])
            shutil.rmtree(staging, ignore_errors=True)
            live = Path(cfg["mastodon_dir"])
            report = compare(manifest, database_counts(cfg["database"]), live / "public" / "system")
    except (BackupError, OSError, subprocess.SubprocessError, ValueError) as err:
        message = str(err) if isinstance(err, BackupError) else f"unexpected {err!r}"
        update_fact(cfg, last_restore_at=iso(utcnow()), last_restore_result="failed",
                    last_restore_error=message, last_restore_scope="full")  # fmt: skip
        journal("err", f"restore FAILED: {message}")
        return 1
    report.update(run=run["run"], snapshots={"database": run["database"], "files": run["files"]})
    ok = report["rows_lost"] == 0 and report["upload_mismatches"] == 0
    update_fact(
        cfg,
        last_restore_at=iso(utcnow()),
        last_restore_result="ok" if ok else "failed",
        last_restore_run=run["run"],
        last_restore_error="" if ok else "the restored data differs from the manifest",
        last_restore_scope="full",
    )
    print(json.dumps(report, sort_keys=True))
    return 0 if ok else 1


def writes_lost(backed_up: dict[str, int], current: dict[str, int]) -> dict[str, int]:
    """Per table, the rows the database holds now beyond those of the backup: what a restore of
    the backup takes away (a table the backup does not know counts whole). Only non-zero ones.
    Rows changed or deleted in place are not visible in counts: this is the least lost."""
    return {
        table: count - backed_up.get(table, 0)
        for table, count in sorted(current.items())
        if count > backed_up.get(table, 0)
    }


def restore_database_only(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """Only the database of a run, over the server's (a rollback: no files, no Redis; the caller
    has stopped Mastodon). Into a scratch name first; just before the swap, the rows the
    database holds then are counted, so the report says how many writes since the backup the
    restore took away."""
    restic = Restic(cfg)
    target = cfg["database"]
    try:
        with exclusive(cfg):
            run = resolve(restic, args.snapshot)
            manifest = read_manifest(restic, run, cfg)
            scratch = restore_database(cfg, restic, run, manifest, target, args.jobs, swap=False)
            try:
                current = database_counts(target) if database_exists(target) else {}
            except BaseException as err:
                with contextlib.suppress(BackupError):
                    psql_value("postgres", f'DROP DATABASE IF EXISTS "{scratch}"')
                if isinstance(err, BackupError):
                    raise BackupError(
                        f"counting the rows of {target} before the swap: {err}; {target} was "
                        "left as it was"
                    ) from err
                raise
            swap_database(scratch, target)
            restored = database_counts(target)
    except (BackupError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        message = str(err) if isinstance(err, BackupError) else f"unexpected {err!r}"
        update_fact(cfg, last_restore_at=iso(utcnow()), last_restore_result="failed",
                    last_restore_error=message, last_restore_scope="database")  # fmt: skip
        journal("err", f"database restore FAILED: {message}")
        return 1
    lost = writes_lost(manifest["rows"], current)
    report: dict[str, Any] = {
        "scope": "database",
        "run": run["run"],
        "created_at": manifest.get("created_at"),
        "mastodon_release": manifest.get("mastodon_release"),
        "snapshots": {"database": run["database"], "files": run["files"]},
        **compare_rows(manifest, restored),
        "rows_before_restore": sum(current.values()),
        "writes_lost": sum(lost.values()),
        "writes_lost_by_table": lost,
    }
    ok = report["rows_lost"] == 0
    error = "" if ok else (
        f"the restored database differs from the manifest of run {run['run']}: "
        f"{report['rows_lost']} rows missing ({json.dumps(report['tables_differing'])})"
    )  # fmt: skip
    update_fact(
        cfg,
        last_restore_at=iso(utcnow()),
        last_restore_result="ok" if ok else "failed",
        last_restore_run=run["run"],
        last_restore_error=error,
        last_restore_scope="database",
    )
    print(json.dumps(report, sort_keys=True))
    if not ok:
        journal("err", f"database restore FAILED: {error}")
        return 1
    journal(
        "info",
        f"database restored from run {run['run']}: {report['writes_lost']} writes made since "
        "the backup are lost",
    )
    return 0


def uploads_in(manifest: dict[str, Any], root: Path) -> Path:
    """Where a run's uploads are below a restore's staging root (runs from before the release
    layout kept them inside the code directory)."""
    saved = manifest.get("uploads_dir") or f"{manifest['mastodon_dir']}/public/system"
    return root / str(saved).lstrip("/")


def _install_files(cfg: dict[str, Any], manifest: dict[str, Any], staging: Path) -> None:
    """Move the restored .env.production, uploads and dump.rdb into place (Redis is stopped by
    the playbook). The remote media cache starts empty: Mastodon fetches it again."""
    source_live = staging / manifest["mastodon_dir"].lstrip("/")
    live = Path(os.path.realpath(cfg["mastodon_dir"]))
    user = cfg["mastodon_user"]
    env_file = source_live / ".env.production"
    if not env_file.is_file():
        raise BackupError("the snapshot holds no .env.production")
    # The staging area may be on another filesystem (/var/tmp and /home often are): move copies
    # then, and a copy is root's, so ownership and modes are set here, not inherited.
    shutil.move(str(env_file), str(live / ".env.production.restored"))
    shutil.chown(live / ".env.production.restored", user, user)
    os.chmod(live / ".env.production.restored", 0o600)
    system = Path(os.path.realpath(live / "public" / "system"))
    incoming = system.parent / f"{system.name}.restoring"
    shutil.rmtree(incoming, ignore_errors=True)
    restored = uploads_in(manifest, staging)
    if restored.is_dir():
        shutil.move(str(restored), str(incoming))
    else:
        incoming.mkdir(parents=True)
    (incoming / "cache").mkdir(exist_ok=True)
    for root, dirs, files in os.walk(incoming):
        for name in [*dirs, *files]:
            shutil.chown(Path(root) / name, user, user)
    shutil.chown(incoming, user, user)
    # Everything is in place beside the live files: swap them in.
    os.replace(live / ".env.production.restored", live / ".env.production")
    if system.exists():
        shutil.rmtree(system)
    os.replace(incoming, system)
    rdb_source = staging / manifest["redis_dump"].lstrip("/")
    redis_dir = Path(cfg["redis_data_dir"])
    if rdb_source.is_file():
        shutil.move(str(rdb_source), str(redis_dir / "dump.rdb"))
        shutil.chown(redis_dir / "dump.rdb", "redis", "redis")
        redis_config = Path(cfg.get("redis_config", "/etc/redis/redis.conf"))
        if re.search(r"^\s*appendonly\s+yes\b", redis_config.read_text(encoding="utf-8"), re.M):
            rebuild_append_only_file(cfg, redis_config)


def rebuild_append_only_file(cfg: dict[str, Any], redis_config: Path) -> None:
    """With appendonly on, Redis loads its append-only files and ignores dump.rdb (an empty
    or missing AOF means an empty data set). So load the restored dump.rdb into a private Redis
    (no TCP port, AOF off), switch the AOF on there, which rewrites it from the data, and shut
    it down; the real unit then starts from that AOF. Redis itself must be stopped."""
    redis_dir = Path(cfg["redis_data_dir"])
    shutil.rmtree(redis_dir / "appendonlydir", ignore_errors=True)
    socket_path = redis_dir / "restore.sock"
    env = dict(os.environ)
    password_file = Path(cfg["redis_password_file"])
    if password_file.exists():
        env["REDISCLI_AUTH"] = password_file.read_text(encoding="utf-8").strip()
    server = subprocess.Popen(
        ["runuser", "-u", "redis", "--", "redis-server", str(redis_config), "--port", "0",
         "--unixsocket", str(socket_path), "--unixsocketperm", "700", "--appendonly", "no",
         "--daemonize", "no", "--supervised", "no", "--logfile", "",
         "--pidfile", str(redis_dir / "restore.pid")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log = Drain(server.stdout) if server.stdout else None

    def cli(*args: str) -> str:
        proc = subprocess.run(
            ["redis-cli", "--no-auth-warning", "-s", str(socket_path), *args],
            capture_output=True, text=True, check=False, env=env, timeout=60,
        )  # fmt: skip
        return proc.stdout.strip()

    try:
        deadline = time.monotonic() + 120
        while cli("PING") != "PONG":
            if server.poll() is not None or time.monotonic() > deadline:
                raise BackupError(
                    "Redis would not start on the restored dump.rdb: "
                    + (log.text()[-500:] if log else "")
                )
            time.sleep(0.5)
        cli("CONFIG", "SET", "appendonly", "yes")
        deadline = time.monotonic() + 600
        while True:
            info = dict(
                line.split(":", 1)
                for line in cli("INFO", "persistence").splitlines()
                if ":" in line
            )
            done = info.get("aof_enabled") == "1" and info.get("aof_rewrite_in_progress") == "0"
            if done and info.get("aof_rewrite_scheduled") == "0":
                if info.get("aof_last_bgrewrite_status") != "ok":
                    raise BackupError("Redis could not write its append-only file from dump.rdb")
                break
            if time.monotonic() > deadline:
                raise BackupError("Redis did not finish its append-only file in time")
            time.sleep(0.5)
        cli("SHUTDOWN", "SAVE")
        server.wait(timeout=120)
        # As the unit's UMask=007 would have made them: nothing for other users.
        for path in [redis_dir / "dump.rdb", redis_dir / "appendonlydir",
                     *(redis_dir / "appendonlydir").iterdir()]:  # fmt: skip
            path.chmod(0o770 if path.is_dir() else 0o660)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
        socket_path.unlink(missing_ok=True)
        (redis_dir / "restore.pid").unlink(missing_ok=True)


# --------------------------------------------------------------------------- drill


ROW_KEYS = ("tables", "rows_expected", "rows_found", "rows_lost", "tables_differing")
UPLOAD_KEYS = ("uploads_expected", "upload_mismatches", "mismatched_uploads")


def cmd_drill(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    """Restore the latest complete run into a scratch database and directory, check it against
    its manifest, decrypt the second-factor secrets with the restored keys, answer /health from
    a scratch web process, and write a dated report (JSON and text)."""
    restic = Restic(cfg)
    started = utcnow()
    report: dict[str, Any] = {"started_at": iso(started), "host": cfg["host"], "checks": {}}
    scratch_db = cfg["drill_database"]
    staging = Path(cfg["restore_tmp_dir"]) / "drill"
    try:
        with exclusive(cfg):
            run = resolve(restic, args.snapshot)
            report.update(
                run=run["run"], snapshots={"database": run["database"], "files": run["files"]}
            )
            manifest = read_manifest(restic, run, cfg)
            failed = restore_files(restic, run, staging)
            report["checks"]["files_restored"] = {"ok": not failed, "failed": failed[:20]}
            restore_database(cfg, restic, run, manifest, scratch_db, args.jobs)
            live_copy = staging / manifest["mastodon_dir"].lstrip("/")
            counts = database_counts(scratch_db)
            found = compare(manifest, counts, uploads_in(manifest, staging))
            report["checks"]["rows"] = {
                "ok": found["rows_lost"] == 0 and not found["tables_differing"],
                **{k: found[k] for k in ROW_KEYS},
            }  # fmt: skip
            report["checks"]["uploads"] = {
                "ok": found["upload_mismatches"] == 0,
                **{k: found[k] for k in UPLOAD_KEYS},
            }  # fmt: skip
            report["checks"]["remote_cache_left_out"] = {
                "ok": found["remote_cache_files_restored"] == 0,
                "files": found["remote_cache_files_restored"],
            }
            env = drill_env(cfg, live_copy / ".env.production", scratch_db)
            report["checks"]["second_factor_secrets"] = check_secrets(cfg, env)
            report["checks"]["health"] = check_health(cfg, env)
    except BackupError as err:
        report["error"] = str(err)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError) as err:
        report["error"] = f"unexpected {err!r}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(BackupError):
            psql_value("postgres", f'DROP DATABASE IF EXISTS "{scratch_db}"')
    report["ok"] = "error" not in report and all(c["ok"] for c in report["checks"].values())
    report["finished_at"] = iso(utcnow())
    paths = write_report(cfg, report, started)
    update_fact(cfg, last_drill={"at": report["finished_at"], "ok": report["ok"],
                                 "run": report.get("run"), "report": str(paths[0])})  # fmt: skip
    print(json.dumps({**report, "report_files": [str(p) for p in paths]}, sort_keys=True))
    if not report["ok"]:
        journal("err", f"restore drill FAILED: see {paths[1]}")
        return 1
    journal("info", f"restore drill passed: {paths[1]}")
    return 0


def drill_env(cfg: dict[str, Any], env_file: Path, database: str) -> dict[str, str]:
    """The restored .env.production's settings, pointed at the scratch database."""
    if not env_file.is_file():
        raise BackupError("the snapshot holds no .env.production")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "RAILS_ENV": "production",
        "HOME": "/nonexistent",
    }
    for line in env_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"').strip("'")
    # The scratch database is on this host's PostgreSQL: reach it directly, not through a
    # PgBouncer that only knows the production database.
    env.update(DB_NAME=database, DB_HOST="/var/run/postgresql", DB_PORT="5432")
    env.pop("PREPARED_STATEMENTS", None)
    return env


@contextlib.contextmanager
def env_file(cfg: dict[str, Any], env: dict[str, str]) -> Iterator[Path]:
    """env as a root-only EnvironmentFile: the restored secrets never appear in a command line."""
    path = Path(cfg["state_dir"]) / "drill.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for key, value in sorted(env.items()):
            out.write(f"{key}={value}\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _unit_args(cfg: dict[str, Any], environment: Path) -> list[str]:
    return [
        f"--uid={cfg['mastodon_user']}", f"--gid={cfg['mastodon_user']}",
        f"--working-directory={cfg['mastodon_dir']}", f"--property=EnvironmentFile={environment}",
    ]  # fmt: skip


def _as_mastodon(
    cfg: dict[str, Any], env: dict[str, str], command: list[str], timeout: int
) -> subprocess.CompletedProcess[str]:
    """A command in the live tree as the mastodon user, with exactly env (the restored keys)."""
    with env_file(cfg, env) as environment:
        return subprocess.run(
            ["systemd-run", "--quiet", "--pipe", "--wait", "--collect",
             *_unit_args(cfg, environment), "--", *cfg["command_prefix"], *command],
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip


SECRETS_RUBY = (
    "n = 0; User.where.not(otp_secret: nil).find_each { |u| u.otp_secret.to_s; n += 1 }; print n"
)


def check_secrets(cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Every stored second-factor secret decrypts with the restored Active Record keys."""
    rails = f"{cfg['mastodon_dir']}/bin/rails"  # systemd-run wants a path, not one relative to it
    proc = _as_mastodon(cfg, env, [rails, "runner", SECRETS_RUBY], timeout=900)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return {"ok": False, "error": f"decrypting with the restored keys failed: {tail[:300]}"}
    count = int(proc.stdout.strip().splitlines()[-1])
    return {"ok": True, "decrypted": count}


def check_health(cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """A scratch web process on the restored data answers /health (bounded wait)."""
    port = str(cfg["drill_web_port"])
    unit = "mastodon-drill-web"
    subprocess.run(["systemctl", "stop", unit], capture_output=True, check=False, timeout=60)
    subprocess.run(
        ["systemctl", "reset-failed", unit], capture_output=True, check=False, timeout=60
    )
    bundle_exec = cfg["command_prefix"] or ["bundle", "exec"]
    with env_file(cfg, {**env, "PORT": port, "BIND": "127.0.0.1"}) as environment:
        started = subprocess.run(
            ["systemd-run", "--quiet", f"--unit={unit}", "--property=Type=exec",
             *_unit_args(cfg, environment), "--",
             *bundle_exec, "puma", "-C", "config/puma.rb"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        # Type=exec: systemd-run returns once puma was executed, so the file has been read.
    if started.returncode != 0:
        return {
            "ok": False,
            "error": f"could not start a scratch web process: {started.stderr.strip()}",
        }
    try:
        status, last = 0, ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/health",
                headers={"Host": cfg["web_domain"], "X-Forwarded-Proto": "https"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
                    status = answer.status
                    if status == 200:
                        return {"ok": True, "status": 200}
            except urllib.error.HTTPError as err:
                status, last = err.code, str(err)
            except OSError as err:
                last = str(err)
            time.sleep(2)
        return {"ok": False, "status": status, "error": last or "no answer"}
    finally:
        subprocess.run(["systemctl", "stop", unit], capture_output=True, check=False, timeout=120)


def write_report(
    cfg: dict[str, Any], report: dict[str, Any], started: dt.datetime
) -> tuple[Path, Path]:
    folder = Path(cfg["state_dir"]) / "drills"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / started.strftime("%Y-%m-%dT%H%M%SZ")
    json_path, text_path = stem.with_suffix(".json"), stem.with_suffix(".txt")
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    lines = [
        f"Restore drill on {report['host']}, {report['started_at']}: "
        f"{'PASSED' if report['ok'] else 'FAILED'}",
        f"Backup run: {report.get('run', 'none')}",
    ]
    if "error" in report:
        lines.append(f"Error: {report['error']}")
    for name, check in report["checks"].items():
        detail = {k: v for k, v in check.items() if k != "ok"}
        lines.append(
            f"- {name}: {'ok' if check['ok'] else 'FAILED'} {json.dumps(detail, sort_keys=True)}"
        )
    text_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, text_path


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mastodon-backup", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="back up now")
    sub.add_parser("freshness", help="fail when the newest complete backup is too old")
    check = sub.add_parser("check", help="restic check with a subset of the data read")
    check.add_argument("--read-all", action="store_true", help="read every pack")
    sub.add_parser("repo-status", help="print the repository's state as JSON")
    sub.add_parser("init", help="initialise the repository, only when there is none")
    sub.add_parser("holds-data", help="print how many statuses and uploads a restore would replace")
    chosen = {}
    for name in ("resolve", "restore", "drill"):
        one = chosen[name] = sub.add_parser(name)
        one.add_argument("--snapshot", default="latest", help="latest, a run id or a snapshot id")
        one.add_argument("--jobs", type=int, default=2, help="pg_restore's parallel jobs")
    chosen["restore"].add_argument(
        "--database-only", action="store_true",
        help="only the database (no files, no Redis); report the writes since the run undone",
    )  # fmt: skip
    verify = sub.add_parser(
        "verify", help="check a run's stored dump and files against its manifest, print JSON"
    )
    verify.add_argument("--snapshot", default="latest", help="latest, a run id or a snapshot id")
    args = parser.parse_args(argv)
    commands = {
        "run": cmd_run, "freshness": cmd_freshness, "check": cmd_check,
        "repo-status": cmd_repo_status, "init": cmd_init, "holds-data": cmd_holds_data,
        "resolve": cmd_resolve, "restore": cmd_restore, "drill": cmd_drill,
        "verify": cmd_verify,
    }  # fmt: skip
    try:
        cfg = load_config()
        cfg.setdefault("host", socket.gethostname())
        return commands[args.command](cfg, args)
    except BackupError as err:
        journal("err", str(err))
        return 1


if __name__ == "__main__":
    sys.exit(main())
