"""`instance-cli validate` and `instance-cli list`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import EXAMPLE_INVENTORY, EXAMPLE_PASS, example_raw

Run = Callable[..., Any]


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    """A copy of the committed example inventory, inside a tmp inventories dir. Without
    `state/`: a local demo run writes it there (git-ignored), and it is not committed."""
    target = tmp_path / "inventories" / "example"
    shutil.copytree(EXAMPLE_INVENTORY, target, ignore=shutil.ignore_patterns("state"))
    # The example is a member of the cooperative: its file sits beside inventories/.
    shutil.copytree(EXAMPLE_INVENTORY.parents[1] / "cooperative", tmp_path / "cooperative")
    return target


def validate(run: Run, inv: Path, password: Path = EXAMPLE_PASS) -> Any:
    return run("validate", str(inv), "--vault-password-file", str(password))


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


def test_committed_example_validates(run: Run, inv: Path) -> None:
    result = validate(run, inv)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "connections needed < max_connections" in result.output


def test_validate_by_slug(run: Run, inv: Path) -> None:
    result = run(
        "validate",
        "example",
        "--inventories",
        str(inv.parent),
        "--vault-password-file",
        str(EXAMPLE_PASS),
    )
    assert result.exit_code == 0, result.output


def test_validate_password_from_env(run: Run, inv: Path) -> None:
    result = run("validate", str(inv), env={"ANSIBLE_VAULT_PASSWORD_FILE": str(EXAMPLE_PASS)})
    assert result.exit_code == 0, result.output


def test_unknown_institution(run: Run, tmp_path: Path) -> None:
    result = run("validate", "nobody", "--inventories", str(tmp_path))
    assert result.exit_code == 1
    assert "no institution at nobody" in result.stderr


def test_validate_reports_every_problem_with_file_and_key(
    run: Run, inv: Path, tmp_path: Path
) -> None:
    def break_main(d: dict[str, Any]) -> None:
        d["postgresql_max_connections"] = 20
        d["nginx_server_name"] = "not a domain"
        d["surprise_variable"] = 1

    edit_yaml(inv / "group_vars/all/main.yml", break_main)
    edit_yaml(
        inv / "community/rules.yml",
        lambda d: d.__setitem__("rules", [{"text": "x" * 301, "hint": ""}] * 11),
    )
    raw = example_raw()
    raw["domains"]["local"] = "foo bar"
    (inv / "answers.yml").write_text(yaml.safe_dump(raw))
    (inv / "community/about.md").unlink()
    edit_yaml(inv / "hosts.yml", lambda d: d["all"]["children"].pop("redis"))
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")
    result = validate(run, inv, wrong)
    assert result.exit_code == 1
    err = result.stderr
    expected = [
        "answers.yml: domains.local: expected a DNS domain",
        "hosts.yml: all.children.redis: missing group",
        "group_vars/all/main.yml: postgresql_max_connections: expected more than the 40 "
        "connections needed",
        "group_vars/all/main.yml: nginx_server_name: expected a DNS domain",
        "group_vars/all/main.yml: surprise_variable: unknown variable",
        "group_vars/all/vault.yml: ",
        "cannot decrypt",
        "community/rules.yml: rules: expected 1 to 10 rules, got 11",
        "community/rules.yml: rules[1].text: expected 1 to 300 characters",
        "community/about.md: missing or empty",
    ]
    for needle in expected:
        assert needle in err, needle
    assert "Traceback" not in result.output


def test_validate_detects_sizing_drift_from_answers(run: Run, inv: Path) -> None:
    edit_yaml(inv / "answers.yml", lambda d: d["users"].__setitem__("expected", 5000))
    result = validate(run, inv)
    assert result.exit_code == 1
    assert "group_vars/all/main.yml: coop_sizing_tier: expected 'large'" in result.stderr
    assert "re-run instance-cli new --force" in result.stderr


def test_validate_checks_vault_contents(run: Run, inv: Path, tmp_path: Path) -> None:
    from instance_cli import secrets

    password = secrets.read_password(EXAMPLE_PASS)
    vault = inv / "group_vars/all/vault.yml"
    values = secrets.decrypt(vault.read_bytes(), password, "v")
    values["vault_mastodon_secret_key_base"] = "short"
    del values["vault_redis_password"]
    vault.write_bytes(secrets.encrypt(values, password))
    result = validate(run, inv)
    assert result.exit_code == 1
    assert "vault_mastodon_secret_key_base: expected 128 hex characters (value not shown)" in (
        result.stderr
    )
    assert "vault_redis_password: missing" in result.stderr
    assert "short" not in result.stderr.replace("shown", "")


def test_list_shows_configured_and_deployed_versions(
    run: Run, inv: Path, write_answers: Callable[..., Path]
) -> None:
    raw = example_raw()
    raw["institution"] = {"name": "Second College", "short_name": "Second", "slug": "second"}
    raw["domains"] = {"local": "second.example.org", "web": ""}
    raw["users"]["expected"] = 1500
    raw["host"]["name"] = "second-1"
    out = inv.parent
    result = run("new", "--answers", str(write_answers(raw)), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    (out / "second" / "state").mkdir()
    (out / "second" / "state" / "last-deploy.yml").write_text(
        "---\nmastodon_version: v4.4.8\nat: '2026-01-02T03:04:05Z'\n"
    )
    (out / "notes").mkdir()  # not an institution: ignored
    result = run("list", "--inventories", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["institution", "domain", "tier", "version"]
    assert lines[1].split() == [
        "example",
        "social.example-university.edu",
        "small",
        "v4.7.2",
        "(configured)",
    ]
    assert lines[2].split() == [
        "second",
        "second.example.org",
        "medium",
        "v4.4.8",
        "(deployed",
        "2026-01-02T03:04:05Z)",
    ]
    assert len(lines) == 3


def test_list_empty_and_missing_dirs(run: Run, tmp_path: Path) -> None:
    result = run("list", "--inventories", str(tmp_path))
    assert result.exit_code == 0
    assert "No institutions" in result.output
    result = run("list", "--inventories", str(tmp_path / "missing"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_unparsable_files_are_problems_not_tracebacks(run: Run, inv: Path) -> None:
    (inv / "hosts.yml").write_text("all: [unclosed\n")
    (inv / "community/rules.yml").write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    result = validate(run, inv)
    assert result.exit_code == 1
    assert "hosts.yml: unreadable (" in result.stderr
    assert "community/rules.yml: " in result.stderr
    assert "Traceback" not in result.output
