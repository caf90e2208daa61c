"""`analytics run`: the command, shared by `instance-cli analytics` and, on a server the analytics
role installed without the rest of the toolkit, `python -m instance_cli.analytics`."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import click

from instance_cli.clicks import CONTEXT, ErrorGroup


@click.group(cls=ErrorGroup, context_settings=CONTEXT)
def analytics() -> None:
    """Weekly, privacy-first picture of how a course community interacts (opt-in)."""


@analytics.command("run", context_settings=CONTEXT)
@click.option(
    "--instance", required=True, help="The instance's URL, e.g. https://social.example.edu."
)
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding an access token with read scopes only.",
)
@click.option(
    "--secret-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the instance's analytics secret (keys the pseudonyms; from the vault).",
)
@click.option("--tag", "tags", multiple=True, required=True, help="A course hashtag (repeatable).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only posts from this day on (UTC); default: the retention period.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the dated run folders.",
)
@click.option("--keep-text", is_flag=True, help="Keep the posts' text (off: only who, when, how).")
@click.option(
    "--retention-days",
    type=int,
    default=120,
    show_default=True,
    help="Delete snapshots older than this (one term).",
)
def analytics_run(
    instance: str,
    token_file: Path,
    secret_file: Path,
    tags: tuple[str, ...],
    since: Any,
    out: Path,
    keep_text: bool,
    retention_days: int,
) -> None:
    """Collect the course tags' public posts and write a dated folder of graphs and figures."""
    from instance_cli.analytics.run import run  # Mastodon.py, networkx, matplotlib: loaded here

    folder = run(
        instance=instance,
        token_file=token_file,
        secret_file=secret_file,
        tags=list(tags),
        out=out,
        since=since.replace(tzinfo=UTC) if since else None,
        keep_text=keep_text,
        retention_days=retention_days,
    )
    click.echo(f"wrote {folder}")
