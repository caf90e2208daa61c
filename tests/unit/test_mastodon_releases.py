"""roles/mastodon's release table and upgrade planner (filter_plugins/mastodon_releases.py).

playbooks/upgrade.yml refuses or plans with these filters before anything on a server changes,
so their refusals are tested here, message by message; the scenario `upgrade` runs them for real.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from cli_testlib import load_module

from instance_cli import answers

REPO = Path(__file__).resolve().parents[2]

releases = load_module(
    "mastodon_releases", REPO / "roles" / "mastodon" / "filter_plugins" / "mastodon_releases.py"
)
TABLE_FILE = REPO / "roles" / "mastodon" / "files" / "releases.yml"
STANDIN_TABLE_FILE = REPO / "tests" / "standin" / "releases.yml"
STANDIN_TAGS = [
    "v4.3.0",
    "v4.4.0",
    "v4.5.0",
    "v4.5.1",
    "v4.6.0",
    "v4.6.1",
    "v4.7.0",
    "v4.7.98",
    "v4.7.99",
]


def table(path: Path = STANDIN_TABLE_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_the_role_default_is_the_reviewed_release_of_the_newest_supported_series() -> None:
    facts = releases.release_facts(table(TABLE_FILE))
    defaults = yaml.safe_load((REPO / "roles" / "mastodon" / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load(
        (REPO / "roles" / "mastodon" / "meta" / "argument_specs.yml").read_text()
    )
    newest = list(facts)[-1]
    assert defaults["mastodon_version"] == facts[newest]["reviewed"]
    assert defaults["mastodon_version"] == answers.DEFAULT_MASTODON_VERSION
    assert (
        specs["argument_specs"]["main"]["options"]["mastodon_version"]["default"]
        == defaults["mastodon_version"]
    )
    # Supported: no end announced yet, or an end still ahead.
    until = facts[newest]["supported_until"]
    assert until is None or dt.date.fromisoformat(until) > dt.date(2026, 12, 1)


def test_both_tables_are_valid_and_in_release_order() -> None:
    for path in (TABLE_FILE, STANDIN_TABLE_FILE):
        facts = releases.release_facts(table(path), str(path))
        assert list(facts) == sorted(facts, key=lambda s: tuple(int(p) for p in s.split(".")))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda t: t["series"]["4.6"].update(reviewed="v4.7.0"),
            "series.4.6.reviewed: expected a release tag of the 4.6 series",
        ),
        (
            lambda t: t["series"]["4.6"]["minimums"].pop("redis"),
            "series.4.6.minimums: expected exactly the keys",
        ),
        (
            lambda t: t["series"]["4.6"]["minimums"].update(ruby="three"),
            "series.4.6.minimums.ruby: expected a dotted version",
        ),
        (
            lambda t: t["series"]["4.6"].update(supported_until="soon"),
            "series.4.6.supported_until: expected a date",
        ),
        (
            lambda t: t["series"]["4.6"].update(build_memory_mb=10),
            "series.4.6.build_memory_mb: expected an integer of at least 512",
        ),
        (lambda t: t["series"]["4.6"].update(colour="red"), "series.4.6: unknown keys colour"),
        (
            lambda t: t["series"]["4.7"]["steps"][0].update(phase="later"),
            "series.4.7.steps[0].phase: expected one of",
        ),
    ],
)
def test_a_bad_table_is_refused_naming_the_field(change: Any, words: str) -> None:
    broken = copy.deepcopy(table())
    change(broken)
    with pytest.raises(AnsibleFilterError, match="") as caught:
        releases.release_facts(broken, "releases.yml")
    assert words in str(caught.value), str(caught.value)


def test_an_upgrade_across_a_series_plans_the_reviewed_hop() -> None:
    plan = releases.upgrade_plan("v4.5.1", "v4.7.0", STANDIN_TAGS, table())
    assert plan["hops"] == ["v4.6.1", "v4.7.0"]  # the reviewed 4.6 release, not v4.6.0
    assert plan["series"] == ["4.6", "4.7"]


def test_a_patch_upgrade_is_one_hop_and_the_same_release_none() -> None:
    assert releases.upgrade_plan("v4.6.0", "v4.6.1", STANDIN_TAGS, table())["hops"] == ["v4.6.1"]
    assert releases.upgrade_plan("v4.7.0", "v4.7.0", STANDIN_TAGS, table())["hops"] == []


def test_without_hops_a_skipped_series_is_refused_with_the_versions_needed() -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        releases.upgrade_plan("v4.4.0", "v4.7.0", STANDIN_TAGS, table(), False)
    assert "skips the series 4.5, 4.6" in str(caught.value)
    assert "deploy v4.5.1 then v4.6.1 then v4.7.0" in str(caught.value)


@pytest.mark.parametrize(
    ("running", "target", "words"),
    [
        ("v4.5.1", "v4.8.0", "the tag v4.8.0 is not in the source repository"),
        (
            "v4.5.1",
            "v4.6.7",
            "the tag v4.6.7 is not in the source repository (the 4.6 series there ends at v4.6.1)",
        ),
        ("v4.7.0", "v4.5.1", "older than the running v4.7.0; Mastodon does not support downgrades"),
        ("v4.5.1", "latest", "expected a release tag like v4.5.3"),
    ],
)
def test_impossible_upgrades_are_refused(running: str, target: str, words: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        releases.upgrade_plan(running, target, STANDIN_TAGS, table())
    assert words in str(caught.value)


def test_a_series_without_reviewed_facts_is_refused() -> None:
    partial = copy.deepcopy(table())
    del partial["series"]["4.6"]
    with pytest.raises(AnsibleFilterError) as caught:
        releases.upgrade_plan("v4.5.1", "v4.7.0", STANDIN_TAGS, partial)
    assert "no release facts for the series 4.6" in str(caught.value)


def test_services_below_a_series_minimum_are_named() -> None:
    facts = releases.release_facts(table(TABLE_FILE))
    have = {"postgresql": "13.9", "redis": "7.0.15", "nodejs": "20.11.1", "ruby": ""}
    below = releases.below_minimums(have, ["4.5", "4.6"], facts)
    assert below == [
        "nodejs 20.11.1 is below 20.19, which Mastodon 4.5 needs",
        "postgresql 13.9 is below 14, which Mastodon 4.5 needs",
        "nodejs 20.11.1 is below 22, which Mastodon 4.6 needs",
        "postgresql 13.9 is below 14, which Mastodon 4.6 needs",
    ]
    assert (
        releases.below_minimums(
            {"postgresql": "17.2", "redis": "8.0", "nodejs": "22.1", "ruby": "3.4.1"},
            ["4.6", "4.7"],
            facts,
        )
        == []
    )
