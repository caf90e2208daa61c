"""Derived facts: sizing tier and tuning numbers, domains, slug.

`sizing(users)` is THE function behind both `instance-cli new` and `instance-cli sizing`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from instance_cli.answers import Answers
from instance_cli.errors import InstanceCliError

MIN_USERS = 1
MAX_USERS = 100_000

# Connections each streaming process's PostgreSQL pool may open (upstream default pool size).
STREAMING_DB_POOL = 10
# Head-room for tootctl, rails runner, pg_dump and an operator's psql session.
ADMIN_HEADROOM = 10
# Port of the first streaming process; one more port per further process.
STREAMING_FIRST_PORT = 4000

BUDGET_NOTE = (
    "Indicative monthly cost of one VM at common European cloud providers in 2026; the "
    "cooperative's budget is 40-60 USD/month per institution. Check your provider's prices."
)


@dataclass(frozen=True)
class Sizing:
    tier: str
    users_max: int
    web_concurrency: int  # puma worker processes
    max_threads: int  # puma threads per worker
    sidekiq_concurrency: int
    streaming_processes: int  # one mastodon-streaming@PORT unit each
    streaming_db_pool: int
    admin_headroom: int
    connections_needed: int
    postgresql_max_connections: int
    postgresql_shared_buffers: str
    postgresql_effective_cache_size: str
    postgresql_work_mem: str
    postgresql_maintenance_work_mem: str
    redis_maxmemory: str
    swap_size_mb: int
    media_cache_retention_days: int
    preview_card_retention_days: int
    vm_vcpus: int
    vm_ram_gb: int
    vm_disk_gb: int
    monthly_cost_usd: str
    pgbouncer: bool  # PgBouncer in transaction mode between Mastodon and PostgreSQL
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def streaming_ports(self) -> list[int]:
        return [STREAMING_FIRST_PORT + i for i in range(self.streaming_processes)]


def connections_needed(
    web_concurrency: int, max_threads: int, sidekiq_concurrency: int, streaming_processes: int
) -> int:
    """PostgreSQL connections Mastodon opens at most: every puma thread, every Sidekiq thread,
    each streaming process's pool, and head-room for admin work. The inventory's
    `postgresql_connections_needed` is the same sum written as a Jinja expression over the
    mastodon_* variables (templates/main.yml.j2; tests/unit/test_wiring.py keeps them equal)."""
    return (
        web_concurrency * max_threads
        + sidekiq_concurrency
        + STREAMING_DB_POOL * streaming_processes
        + ADMIN_HEADROOM
    )


# The same sum as Ansible evaluates it in the inventory, from the roles/mastodon variables the
# inventory sets (so an operator who lowers the concurrency lowers the connections needed).
CONNECTIONS_NEEDED_EXPRESSION = (
    "{{ mastodon_web_concurrency * mastodon_max_threads + mastodon_sidekiq_concurrency"
    f" + {STREAMING_DB_POOL} * mastodon_streaming_ports | length + {ADMIN_HEADROOM} }}}}"
)


# tier, users_max, workers, threads, sidekiq, streaming processes, max_conn, shared_buffers, cache,
# work_mem, maintenance, redis, swap, media days, card days, vcpu, ram, disk, cost, pgbouncer, note
_TIERS: tuple[tuple[Any, ...], ...] = (
    ("small", 500, 2, 5, 10, 1, 100, "512MB", "1536MB", "8MB", "128MB",
     "256mb", 2048, 7, 30, 2, 4, 60, "15-30", False,
     "Fits the budget with room for growth; one VM runs everything."),
    ("medium", 2000, 3, 5, 25, 1, 150, "1GB", "3GB", "12MB", "256MB",
     "512mb", 4096, 7, 30, 4, 8, 120, "40-60", False,
     "The top of the cooperative's budget; one VM runs everything."),
    ("large", 10_000, 4, 5, 40, 1, 200, "2GB", "6GB", "16MB", "512MB",
     "1gb", 4096, 3, 14, 8, 16, 250, "90-150", True,
     "Above the budget; consider object storage for media and a separate database VM."),
    ("xlarge", MAX_USERS, 6, 5, 60, 1, 250, "4GB", "12GB", "16MB", "1GB",
     "2gb", 4096, 3, 14, 16, 32, 500, "250-400", True,
     "Far above the budget; split groups onto separate hosts (see upstream's scaling guide)."),
)  # fmt: skip


def sizing(users: int) -> Sizing:
    """Tier and tuning numbers for an expected number of users (1..100000)."""
    if isinstance(users, bool) or not isinstance(users, int):
        raise InstanceCliError(f"users: expected a whole number, got {users!r}")
    if not MIN_USERS <= users <= MAX_USERS:
        raise InstanceCliError(
            f"users: expected a number of users from {MIN_USERS} to {MAX_USERS}, got {users}"
        )
    for row in _TIERS:
        (tier, users_max, workers, threads, sidekiq, streaming, max_conn, sb, ecs, wm, mwm,
         redis, swap, media, cards, vcpu, ram, disk, cost, pgbouncer, note) = row  # fmt: skip
        if users <= users_max:
            needed = connections_needed(workers, threads, sidekiq, streaming)
            return Sizing(
                tier=tier,
                users_max=users_max,
                web_concurrency=workers,
                max_threads=threads,
                sidekiq_concurrency=sidekiq,
                streaming_processes=streaming,
                streaming_db_pool=STREAMING_DB_POOL * streaming,
                admin_headroom=ADMIN_HEADROOM,
                connections_needed=needed,
                postgresql_max_connections=max_conn,
                postgresql_shared_buffers=sb,
                postgresql_effective_cache_size=ecs,
                postgresql_work_mem=wm,
                postgresql_maintenance_work_mem=mwm,
                redis_maxmemory=redis,
                swap_size_mb=swap,
                media_cache_retention_days=media,
                preview_card_retention_days=cards,
                vm_vcpus=vcpu,
                vm_ram_gb=ram,
                vm_disk_gb=disk,
                monthly_cost_usd=cost,
                pgbouncer=pgbouncer,
                note=note,
            )
    raise AssertionError("unreachable: the last tier covers MAX_USERS")  # pragma: no cover


def tiers() -> list[Sizing]:
    """Every tier, smallest first (each as `sizing` gives it for the tier's largest count)."""
    return [sizing(row[1]) for row in _TIERS]


def sizing_table(s: Sizing) -> str:
    """A human-readable table of a sizing plan."""
    rows = [
        ("tier", f"{s.tier} (up to {s.users_max} users)"),
        ("puma workers x threads", f"{s.web_concurrency} x {s.max_threads}"),
        ("sidekiq concurrency", str(s.sidekiq_concurrency)),
        ("streaming DB pool", str(s.streaming_db_pool)),
        (
            "DB connections needed",
            f"{s.connections_needed} (= {s.web_concurrency}x{s.max_threads} + "
            f"{s.sidekiq_concurrency} + {s.streaming_db_pool} + {s.admin_headroom} admin)",
        ),
        ("postgresql max_connections", str(s.postgresql_max_connections)),
        ("pgbouncer", "yes, transaction pooling" if s.pgbouncer else "no"),
        ("postgresql shared_buffers", s.postgresql_shared_buffers),
        ("postgresql effective_cache_size", s.postgresql_effective_cache_size),
        ("postgresql work_mem", s.postgresql_work_mem),
        ("postgresql maintenance_work_mem", s.postgresql_maintenance_work_mem),
        ("redis maxmemory", s.redis_maxmemory),
        ("swap", f"{s.swap_size_mb} MB"),
        ("media cache retention", f"{s.media_cache_retention_days} days"),
        ("preview card retention", f"{s.preview_card_retention_days} days"),
        ("recommended VM", f"{s.vm_vcpus} vCPU, {s.vm_ram_gb} GB RAM, {s.vm_disk_gb} GB disk"),
        ("monthly cost (indicative)", f"{s.monthly_cost_usd} USD"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", s.note, BUDGET_NOTE]
    return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    """Everything derived from the answers that templates need besides the answers."""

    slug: str
    local_domain: str
    web_domain: str  # "" when it equals the local domain
    server_name: str  # the domain nginx serves
    sizing: Sizing
    media_cache_retention_days: int
    registrations_mode: str  # Mastodon's name: open | approved | none
    title: str
    default_language: str


REGISTRATION_MODES = {"open": "open", "approval": "approved", "closed": "none"}


def make_plan(answers: Answers) -> Plan:
    s = sizing(int(answers["users.expected"]))
    web = str(answers.get("domains.web") or "")
    local = str(answers["domains.local"])
    media = answers.get("retention.media_cache_days")
    return Plan(
        slug=str(answers["institution.slug"]),
        local_domain=local,
        web_domain=web,
        server_name=web or local,
        sizing=s,
        media_cache_retention_days=int(media) if media else s.media_cache_retention_days,
        registrations_mode=REGISTRATION_MODES[str(answers["registrations.mode"])],
        title=f"{answers['institution.short_name']} Social",
        default_language=str(answers["languages"][0]),
    )
