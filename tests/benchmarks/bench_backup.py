"""Benchmark: mastodon-backup against the raw tools, an incremental backup, restore and drill.

On one container started from the site-debian12 snapshot (tests/testbed/snapshot.sh ensure
site-debian12), with the fixture data of the backup scenario (51 uploads over 100 MB, a remote
media cache, 12 000 statuses, a 16 MB table) and a local restic repository, it measures in one
run, interleaved, on the same data:

- raw: `pg_dump -Fc` to /dev/null plus `tar` of .env.production, the uploads (no cache) and
  dump.rdb into a pipe; and the first `mastodon-backup run` (goal: backup / raw <= 1.3);
- a second backup after changing about 1 % of the data (one new 1 MB upload, 1 % of the
  statuses edited): its time and the bytes it added to the repository, each against the
  first (goal <= 0.15);
- `mastodon-backup restore` (Mastodon and Redis stopped, as restore.yml does) and
  `mastodon-backup drill`.

Prints one JSON object. The container (db-bench-backup) is removed afterwards, also on failure.

    .venv/bin/python tests/benchmarks/bench_backup.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_site_converge import (
    COMMON,
    REPO,
    docker,
    playbook_env,
    prepare_scratch,
    start_container,
)

CONTAINER = "db-bench-backup"
IMAGE = "instance-testbed-snapshot:site-debian12"
LIVE = "/home/mastodon/live"
REPOSITORY = "/var/backups/restic-bench"
FIXTURE = r"""
set -euo pipefail
system=/home/mastodon/live/public/system
for i in $(seq -w 1 50); do
  d=$system/media_attachments/files/000/000/0$i/original; mkdir -p "$d"
  head -c 2097152 /dev/urandom > "$d/upload-$i.bin"
done
mkdir -p $system/media_attachments/files/000/001/000/original
head -c 12582912 /dev/urandom > $system/media_attachments/files/000/001/000/original/large.bin
for i in $(seq -w 1 20); do
  d=$system/cache/media_attachments/files/111/000/0$i/original; mkdir -p "$d"
  head -c 1048576 /dev/urandom > "$d/remote-$i.bin"
done
chown -R mastodon:mastodon $system
runuser -u postgres -- psql -Xq -d mastodon_production -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgcrypto;
INSERT INTO statuses (account_id, text, visibility, created_at, updated_at)
  SELECT (SELECT min(id) FROM accounts WHERE domain IS NULL), 'Fixture status ' || g, g % 4,
         now() - g * interval '1 minute', now() FROM generate_series(1, 12000) AS g;
CREATE TABLE backup_fixture_blobs (id serial PRIMARY KEY, data bytea NOT NULL);
INSERT INTO backup_fixture_blobs (data)
  SELECT gen_random_bytes(1024) FROM generate_series(1, 16000);
SQL
"""
CHANGE_ONE_PERCENT = r"""
set -euo pipefail
d=/home/mastodon/live/public/system/media_attachments/files/000/000/001/original
head -c 1048576 /dev/urandom > $d/new.bin
runuser -u postgres -- psql -XqAt -d mastodon_production -c \
  "UPDATE statuses SET text = text || ' (edited)'
   WHERE id IN (SELECT id FROM statuses ORDER BY id LIMIT 120)"
"""
RAW = (
    "pg=$(date +%s.%N); runuser -u postgres -- pg_dump -Fc mastodon_production > /dev/null; "
    # tar into a pipe: GNU tar writing to /dev/null itself skips reading the files.
    "t=$(date +%s.%N); tar cf - --exclude=./public/system/cache -C /home/mastodon/live "
    "./.env.production ./public/system /var/lib/redis/dump.rdb 2>/dev/null | cat > /dev/null; "
    "e=$(date +%s.%N); "
    'echo "$pg $t $e"'
)


def sh(script: str, timeout: float = 3600) -> str:
    return docker("exec", CONTAINER, "bash", "-c", script, timeout=timeout)


def timed(script: str) -> float:
    start = time.monotonic()
    sh(script)
    return time.monotonic() - start


def repository_bytes() -> int:
    return int(sh(f"du -sb {REPOSITORY} | cut -f1"))


def set_up_backups() -> None:
    """The backup role through playbooks/backup.yml (not its backup-now tasks), local repository."""
    scratch = prepare_scratch("bench-backup-", CONTAINER, "community.docker.docker")
    argv = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i", str(REPO / "inventories/example"), "-i", str(scratch / "hosts-overlay.yml"),
        "--vault-password-file", str(REPO / "examples/example-university.vault-pass"),
        "-e", f"@{COMMON / 'test-overrides.yml'}",
        "-e", f"backup_restic_repository={REPOSITORY}",
        "--skip-tags", "backup-now",
        str(REPO / "playbooks/backup.yml"),
    ]  # fmt: skip
    env = playbook_env(scratch) | {"SITE_REPO_ROOT": str(REPO), "SITE_TEST_DIR": str(scratch)}
    proc = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"backup.yml failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")


def main() -> int:
    start_container(IMAGE, CONTAINER)
    try:
        sh(
            "for i in $(seq 1 90); do curl -sf http://127.0.0.1:3000/health && exit 0; sleep 2; "
            "done; exit 1"
        )
        sh(FIXTURE)
        set_up_backups()
        auth = "REDISCLI_AUTH=$(cat /etc/mastodon-backup/redis-password)"
        sh(f"{auth} redis-cli --no-auth-warning SAVE")
        sh(RAW)  # warm the page cache for both sides alike
        pg_start, tar_start, tar_end = (float(x) for x in sh(RAW).split())
        raw = tar_end - pg_start
        before = repository_bytes()
        first = timed("mastodon-backup run")
        first_bytes = repository_bytes() - before
        pg2, _, end2 = (float(x) for x in sh(RAW).split())
        raw_again = end2 - pg2
        sh(CHANGE_ONE_PERCENT)
        before = repository_bytes()
        second = timed("mastodon-backup run")
        second_bytes = repository_bytes() - before
        drill = timed("mastodon-backup drill")
        sh("systemctl stop mastodon-web mastodon-sidekiq mastodon-streaming redis-server")
        restore = timed("mastodon-backup restore --snapshot latest")
        sh("systemctl start redis-server mastodon-web mastodon-sidekiq mastodon-streaming")
        raw_mean = (raw + raw_again) / 2
        result = {
            "benchmark": "backup",
            "data": {
                "uploads": 51,
                "upload_bytes": int(sh(f"du -sb --exclude=cache {LIVE}/public/system | cut -f1")),
                "statuses": 12000,
            },
            "raw_pg_dump_and_tar_s": round(raw_mean, 2),
            "raw_pg_dump_s": round(tar_start - pg_start, 2),
            "first_backup_s": round(first, 2),
            "backup_over_raw": round(first / raw_mean, 3),
            "backup_over_raw_goal": 1.3,
            "first_backup_bytes_added": first_bytes,
            "second_backup_s": round(second, 2),
            "second_over_first_time": round(second / first, 3),
            "second_backup_bytes_added": second_bytes,
            "second_over_first_bytes": round(second_bytes / first_bytes, 3),
            "incremental_goal": 0.15,
            "restore_s": round(restore, 2),
            "restore_drill_s": round(drill, 2),
        }
        print(json.dumps(result, indent=2))
        ok = first / raw_mean <= 1.3 and second_bytes / first_bytes <= 0.15
        return 0 if ok and second / first <= 0.15 else 1
    finally:
        docker("rm", "-f", CONTAINER, check=False)


if __name__ == "__main__":
    sys.exit(main())
