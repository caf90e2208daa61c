"""Values several roles need are defined once and wired in the inventory (group_vars/all).

The inventory instance-cli writes sets roles/mastodon's web port, streaming ports, concurrency and
Ruby install method once; nginx's upstreams, instance_settings' API URL and command prefix, and
postgresql's connections needed are expressions over them. These tests evaluate the committed
example with Ansible's own templar (ansible-core 2.19), change the sources as an operator would,
and check the wired values follow; and that no role's defaults repeat the shared values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from cli_testlib import EXAMPLE_INVENTORY, REPO, trusted

from instance_cli.plan import CONNECTIONS_NEEDED_EXPRESSION, connections_needed, sizing

MAIN = EXAMPLE_INVENTORY / "group_vars" / "all" / "main.yml"


def evaluate(name: str, **changes: Any) -> Any:
    """The value Ansible gives `name` from the example inventory, with some sources changed
    (as host_vars or -e would change them)."""
    variables = {**yaml.safe_load(MAIN.read_text(encoding="utf-8")), **changes}
    templar = Templar(loader=DataLoader(), variables=trusted(variables))
    return templar.template(trusted(variables[name]))


def test_connections_needed_follows_mastodons_concurrency() -> None:
    # The example's small tier: 2 workers x 5 threads + 10 Sidekiq + 10 streaming + 10 admin.
    assert evaluate("postgresql_connections_needed") == 40
    # Lowering a concurrency lowers the connections needed, as validate's message promises.
    assert evaluate("postgresql_connections_needed", mastodon_sidekiq_concurrency=4) == 34
    assert evaluate("postgresql_connections_needed", mastodon_web_concurrency=1) == 35
    assert evaluate("postgresql_connections_needed", mastodon_max_threads=3) == 36
    # A second streaming process brings its own pool.
    assert evaluate("postgresql_connections_needed", mastodon_streaming_ports=[4000, 4001]) == 50


def follows_concurrency(variables: dict[str, Any]) -> bool:
    """Whether postgresql_connections_needed changes when Sidekiq's concurrency does."""
    base = {**variables, "mastodon_sidekiq_concurrency": 10}
    lower = {**variables, "mastodon_sidekiq_concurrency": 4}
    values = []
    for candidate in (base, lower):
        templar = Templar(loader=DataLoader(), variables=trusted(candidate))
        values.append(templar.template(trusted(candidate["postgresql_connections_needed"])))
    return bool(values[0] != values[1])


def test_a_literal_connections_needed_would_be_caught() -> None:
    committed = yaml.safe_load(MAIN.read_text(encoding="utf-8"))
    assert follows_concurrency(committed)
    # The inventory as it was before the wiring: a literal that ignores the concurrency.
    assert not follows_concurrency({**committed, "postgresql_connections_needed": 40})


@pytest.mark.parametrize("users", [1, 500, 501, 2000, 2001, 10_000, 10_001, 100_000])
def test_the_wired_expression_equals_the_cli_sizing(users: int) -> None:
    s = sizing(users)
    variables = {
        "mastodon_web_concurrency": s.web_concurrency,
        "mastodon_max_threads": s.max_threads,
        "mastodon_sidekiq_concurrency": s.sidekiq_concurrency,
        "mastodon_streaming_ports": s.streaming_ports,
    }
    templar = Templar(loader=DataLoader(), variables=variables)
    value = templar.template(trust_as_template(CONNECTIONS_NEEDED_EXPRESSION))
    assert (
        value
        == s.connections_needed
        == connections_needed(
            s.web_concurrency, s.max_threads, s.sidekiq_concurrency, s.streaming_processes
        )
    )
    assert value < s.postgresql_max_connections


def test_ports_and_ruby_prefix_are_wired_from_mastodons_values() -> None:
    assert evaluate("nginx_web_upstream") == "127.0.0.1:3000"
    assert evaluate("nginx_streaming_upstreams") == ["127.0.0.1:4000"]
    assert evaluate("instance_settings_api_url") == "http://127.0.0.1:3000"
    assert evaluate("instance_settings_command_prefix") == [
        "/home/mastodon/.rbenv/shims/bundle",
        "exec",
    ]
    # One change of the source moves every role that needs it.
    assert evaluate("nginx_web_upstream", mastodon_web_port=3100) == "127.0.0.1:3100"
    assert evaluate("instance_settings_api_url", mastodon_web_port=3100) == "http://127.0.0.1:3100"
    assert evaluate("nginx_streaming_upstreams", mastodon_streaming_ports=[4000, 4001]) == [
        "127.0.0.1:4000",
        "127.0.0.1:4001",
    ]
    assert evaluate("instance_settings_command_prefix", mastodon_ruby_install_method="system") == []
    assert evaluate("instance_settings_command_prefix", mastodon_home="/srv/mastodon") == [
        "/srv/mastodon/.rbenv/shims/bundle",
        "exec",
    ]


# The wired values' literals: none of the roles that receive them may repeat them in defaults.
SHARED_LITERALS = (":3000", ":4000", "shims/bundle")
RECEIVING_ROLES = ("nginx", "instance_settings", "postgresql")


def repeated_literals(defaults: Path) -> list[str]:
    values = yaml.safe_load(defaults.read_text(encoding="utf-8")) or {}
    text = yaml.safe_dump(values)
    found = [literal for literal in SHARED_LITERALS if literal in text]
    if values.get("postgresql_connections_needed"):
        found.append(f"postgresql_connections_needed: {values['postgresql_connections_needed']}")
    return found


@pytest.mark.parametrize("role", RECEIVING_ROLES)
def test_no_receiving_role_repeats_the_shared_values_in_its_defaults(role: str) -> None:
    assert repeated_literals(REPO / "roles" / role / "defaults" / "main.yml") == []


def test_a_repeated_literal_would_be_caught(tmp_path: Path) -> None:
    defaults = tmp_path / "main.yml"
    defaults.write_text(
        "nginx_web_upstream: 127.0.0.1:3000\n"
        "instance_settings_command_prefix: [/home/mastodon/.rbenv/shims/bundle, exec]\n"
        "postgresql_connections_needed: 37\n",
        encoding="utf-8",
    )
    assert repeated_literals(defaults) == [
        ":3000",
        "shims/bundle",
        "postgresql_connections_needed: 37",
    ]


# What the backup role saves and where it lives comes from the roles that own it.
BACKUP_WIRED = {
    "backup_mastodon_dir": ("/home/mastodon/live", {"mastodon_home": "/srv/m"}, "/srv/m/live"),
    "backup_mastodon_user": ("mastodon", {"mastodon_user": "social"}, "social"),
    "backup_command_prefix": (
        ["/home/mastodon/.rbenv/shims/bundle", "exec"],
        {"mastodon_ruby_install_method": "system"},
        [],
    ),
    "backup_database": ("mastodon_production", {"mastodon_db_name": "m2"}, "m2"),
    "backup_database_role": ("mastodon", {"mastodon_db_user": "m2"}, "m2"),
    "backup_redis_port": (6379, {"redis_port": 6380}, 6380),
    "backup_redis_data_dir": ("/var/lib/redis", {"redis_data_dir": "/srv/redis"}, "/srv/redis"),
    "backup_web_port": (3000, {"mastodon_web_port": 3100}, 3100),
    "backup_web_domain": ("social.example-university.edu", {"mastodon_web_domain": ""},
                          "example-university.edu"),
    "backup_institution": ("example", {"coop_institution_slug": "other"}, "other"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BACKUP_WIRED))
def test_the_backup_role_receives_its_paths_and_ports_from_their_owners(name: str) -> None:
    now, change, then = BACKUP_WIRED[name]
    assert str(evaluate(name)) == str(now)
    assert str(evaluate(name, **change)) == str(then)
    defaults = yaml.safe_load((REPO / "roles/backup/defaults/main.yml").read_text("utf-8"))
    assert defaults[name] in ("", 0, None), f"roles/backup repeats {name} in its defaults"
