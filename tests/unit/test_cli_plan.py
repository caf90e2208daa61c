"""Sizing: tiers, derived numbers and the `sizing` command."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

from instance_cli.errors import InstanceCliError
from instance_cli.plan import MAX_USERS, sizing


@pytest.mark.parametrize(
    ("users", "tier"),
    [(1, "small"), (500, "small"), (501, "medium"), (2000, "medium"), (2001, "large"),
     (10_000, "large"), (10_001, "xlarge"), (MAX_USERS, "xlarge")],
)  # fmt: skip
def test_tier_boundaries(users: int, tier: str) -> None:
    assert sizing(users).tier == tier


@pytest.mark.parametrize("users", [1, 500, 501, 2000, 2001, 10_000, 10_001, MAX_USERS])
def test_connections_needed_is_the_sum_and_fits_max_connections(users: int) -> None:
    s = sizing(users)
    assert s.connections_needed == (
        s.web_concurrency * s.max_threads
        + s.sidekiq_concurrency
        + s.streaming_db_pool
        + s.admin_headroom
    )
    assert s.connections_needed < s.postgresql_max_connections
    assert s.preview_card_retention_days >= 14  # tootctl refuses fewer days


def test_bigger_tiers_never_get_less() -> None:
    tiers = [sizing(n) for n in (500, 2000, 10_000, MAX_USERS)]
    for small, big in itertools.pairwise(tiers):
        assert big.vm_ram_gb > small.vm_ram_gb
        assert big.sidekiq_concurrency >= small.sidekiq_concurrency
        assert big.postgresql_max_connections >= small.postgresql_max_connections


@pytest.mark.parametrize("users", [0, -1, MAX_USERS + 1, True])
def test_out_of_range_is_rejected(users: int) -> None:
    with pytest.raises(InstanceCliError, match="users: expected"):
        sizing(users)


def test_sizing_command_table(run: Callable[..., object]) -> None:
    result = run("sizing", "--users", "400")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    out = result.output  # type: ignore[attr-defined]
    for needle in (
        "small (up to 500 users)",
        "2 x 5",
        "postgresql shared_buffers",
        "512MB",
        "redis maxmemory",
        "recommended VM",
        "USD",
        "Indicative",
        "40-60 USD/month",
    ):
        assert needle in out, needle  # fmt: skip


def test_sizing_command_json_is_the_same_function(run: Callable[..., object]) -> None:
    result = run("sizing", "--users", "3000", "--json")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    data = json.loads(result.output)  # type: ignore[attr-defined]
    assert data == {"users": 3000, **sizing(3000).as_dict()}


@pytest.mark.parametrize("args", [["--users", "0"], ["--users", "100001"], ["--users", "ten"], []])
def test_sizing_command_rejects_bad_users(run: Callable[..., object], args: list[str]) -> None:
    result = run("sizing", *args)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    assert "--users" in result.output  # type: ignore[attr-defined]
