"""Issue 11, item 7: error messages name the field and what was expected, once; time zones are
checked against the tz database; system accounts are refused as admins; every problem of an
answers file (and of an inventory's answers.yml) is reported at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import EXAMPLE_INVENTORY, EXAMPLE_PASS, example_raw

Run = Callable[..., Any]


def new_dry(run: Run, answers: Path, tmp_path: Path) -> Any:
    return run("new", "--answers", str(answers), "--output-dir", str(tmp_path / "out"),
               "--dry-run")  # fmt: skip


def problem_lines(stderr: str) -> list[str]:
    """The problem lines of `Error: N problems found:` without the file prefix."""
    return [line.strip().split(": ", 1)[1] for line in stderr.splitlines() if line[:2] == "  "]


def test_over_long_rule_says_the_limit_once_with_the_length(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    raw = example_raw()
    raw["rules"] = [{"text": "x" * 400}]
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 1
    assert problem_lines(result.stderr) == [
        'rules[1].text: expected a rule of at most 300 characters, got "'
        + "x" * 57
        + '..." (400 characters)'
    ]
    assert result.stderr.count("at most 300") == 1


@pytest.mark.parametrize("tz", ["Europe/Pariss", "Mars/Olympus_Mons", "UTC/Etc"])
def test_unknown_time_zone_is_refused_by_new_and_validate(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, tz: str
) -> None:
    raw = example_raw()
    raw["host"]["timezone"] = tz
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 1
    problems = problem_lines(result.stderr)
    assert len(problems) == 1
    assert problems[0].startswith("host.timezone: expected a time zone of the tz database")
    assert problems[0].endswith(f'got "{tz}"')
    if tz == "Europe/Pariss":
        assert "(did you mean Europe/Paris?)" in problems[0]
    # the same check when validating an existing inventory's answers.yml
    inv = tmp_path / "inventories" / "example"
    shutil.copytree(EXAMPLE_INVENTORY, inv, ignore=shutil.ignore_patterns("state"))
    (inv / "answers.yml").write_text("---\n" + yaml.safe_dump(raw, sort_keys=False))
    result = run("validate", str(inv), "--vault-password-file", str(EXAMPLE_PASS))
    assert result.exit_code == 1
    assert "answers.yml: host.timezone: expected a time zone of the tz database" in result.stderr


@pytest.mark.parametrize("tz", ["Europe/Paris", "Etc/UTC", "America/Argentina/Buenos_Aires"])
def test_real_time_zones_pass(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, tz: str
) -> None:
    raw = example_raw()
    raw["host"]["timezone"] = tz
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["root", "daemon", "www-data", "postgres", "redis", "mastodon",
                                  "sshd", "nobody", "_apt", "systemd-network", "sudo"])  # fmt: skip
def test_system_accounts_are_refused_as_admins(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, name: str
) -> None:
    raw = example_raw()
    raw["admins"][0]["name"] = name
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 1
    assert problem_lines(result.stderr) == [
        f"admins[1].name: expected a personal login, not the system or service account {name} "
        f'(root, daemon, www-data, postgres, redis, mastodon, ... are reserved), got "{name}"'
    ]


def test_every_problem_at_once_with_too_many_rules_and_an_over_long_one(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    raw = example_raw()
    raw["rules"] = [{"text": f"Rule {i}"} for i in range(11)] + [{"text": "y" * 301}]
    raw["admins"][0]["name"] = "root"
    raw["host"]["timezone"] = "Europe/Pariss"
    raw["owner"]["username"] = "alice"  # a cross-field problem next to the field problems
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 1
    fields = [p.split(":")[0] for p in problem_lines(result.stderr)]
    assert fields == ["rules", "rules[12].text", "admins[1].name", "host.timezone", "moderators"]
    assert "rules: expected a list of 1 to 10 rules (each with text, hint), got a list of 12" in (
        result.stderr
    )
    assert "5 problems found" in result.stderr


def test_a_field_with_its_own_problem_gets_no_second_cross_field_problem(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    raw = example_raw()
    raw["sso"] = {"mode": "oidc", "oidc": {"issuer": "http://not-https", "client_id": "m",
                                           "display_name": "SSO"}}  # fmt: skip
    result = new_dry(run, write_answers(raw), tmp_path)
    assert result.exit_code == 1
    problems = problem_lines(result.stderr)
    assert [p.split(":")[0] for p in problems] == ["sso.oidc.issuer"], problems
