"""One analytics run: collect (resuming or incremental), then write the dated folder, the index,
and delete what the retention period no longer allows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mastodon import Mastodon, MastodonError

from instance_cli.analytics.collect import Api, Collector
from instance_cli.analytics.figures import resolved_posts
from instance_cli.analytics.privacy import Pseudonymizer
from instance_cli.analytics.report import prune, write_index, write_run
from instance_cli.errors import InstanceCliError

DEFAULT_RETENTION_DAYS = 120  # one term


def _read(path: Path, what: str) -> bytes:
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise InstanceCliError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    if not value:
        raise InstanceCliError(f"{what}: {path} is empty")
    return value


def client(instance: str, token: str) -> Mastodon:
    """Mastodon.py's client: waits out rate limits (X-RateLimit-*) instead of failing."""
    return Mastodon(
        api_base_url=instance,
        access_token=token,
        ratelimit_method="wait",
        version_check_mode="none",
        request_timeout=60,
    )


def run(
    *,
    instance: str,
    token_file: Path,
    secret_file: Path,
    tags: list[str],
    out: Path,
    since: datetime | None = None,
    keep_text: bool = False,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    api: Api | None = None,
    now: datetime | None = None,
) -> Path:
    if not tags:
        raise InstanceCliError("--tag: expected at least one course hashtag")
    if retention_days < 1:
        raise InstanceCliError(f"--retention-days: expected at least 1, got {retention_days}")
    moment = now or datetime.now(UTC)
    oldest_allowed = moment - timedelta(days=retention_days)
    start = max(since, oldest_allowed) if since else oldest_allowed
    pseudonyms = Pseudonymizer(_read(secret_file, "--secret-file"))
    names = sorted({t.lstrip("#").lower() for t in tags})
    key = hashlib.sha256(",".join(names).encode()).hexdigest()[:12]
    collector = Collector(
        api=api or client(instance, _read(token_file, "--token-file").decode()),
        pseudonyms=pseudonyms,
        state_path=out / ".state" / f"{key}.json",
        tags=names,
        since=start,
        keep_text=keep_text,
    )
    try:
        state = collector.run()
    except MastodonError as exc:
        raise InstanceCliError(
            f"{instance}: the API failed ({type(exc).__name__}: {exc}); what was collected is"
            " kept, run the same command again to resume"
        ) from exc
    folder = write_run(resolved_posts(state), out, names, now=moment)
    prune(out, retention_days, today=moment.date())
    write_index(out, names)
    return folder
