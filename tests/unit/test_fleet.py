"""Fleet runs (instance-cli fleet): every member, or the ones named, each with its own inventory
and its own vault password; upgrades canary-first, and the first failure leaves the rest
untouched. ansible-playbook is a stand-in script here that records how it was called."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from instance_cli import cooperative, fleet
from instance_cli.errors import InstanceCliError

MEMBERS = ["alpha", "beta", "gamma"]
# Records its arguments, one JSON line per call; fails for the inventory named in FAIL_FOR.
FAKE_PLAYBOOK = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
inventory = sys.argv[sys.argv.index("-i") + 1]
print("PLAY RECAP for", inventory)
sys.exit(1 if os.path.basename(inventory) in os.environ.get("FAIL_FOR", "").split(",") else 0)
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cooperative").mkdir()
    doc = {"name": "Test cooperative", "members": MEMBERS, "channel": "v4.7.2", "baseline": {}}
    (tmp_path / "cooperative" / "cooperative.yml").write_text(yaml.safe_dump(doc))
    for slug in MEMBERS:
        (tmp_path / "inventories" / slug).mkdir(parents=True)
        (tmp_path / "inventories" / slug / "hosts.yml").write_text("all: {}\n")
        (tmp_path / "passwords").mkdir(exist_ok=True)
        (tmp_path / "passwords" / f"{slug}.txt").write_text(f"{slug}-own-password-0123456789\n")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "ansible-playbook"
    fake.write_text(FAKE_PLAYBOOK)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def calls(repo: Path) -> list[list[str]]:
    path = repo / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def fleet_cli(run: Callable[..., Any], repo: Path, *args: str) -> Any:
    options = ["--vault-password-dir", str(repo / "passwords"), "--log-dir", str(repo / "logs")]
    return run("fleet", *options, *args)


def test_a_job_runs_for_every_member_with_its_own_inventory_and_password(
    run: Callable[..., Any], repo: Path
) -> None:
    result = fleet_cli(run, repo, "site", "--parallel", "3", "--", "--check", "--diff")
    assert result.exit_code == 0, result.output
    assert "all 3 succeeded" in result.output
    seen = {}
    for argv in calls(repo):
        inventory = Path(argv[argv.index("-i") + 1]).name
        password = Path(argv[argv.index("--vault-password-file") + 1]).name
        seen[inventory] = password
        assert argv[-3:] == [str(repo / "playbooks" / "site.yml"), "--check", "--diff"]
    assert seen == {slug: f"{slug}.txt" for slug in MEMBERS}, "each its own password, no other"
    for slug in MEMBERS:
        assert (
            f"PLAY RECAP for inventories/{slug}" in (repo / "logs" / f"{slug}-site.log").read_text()
        )


def test_only_the_chosen_members_run_and_an_unknown_one_stops_everything(
    run: Callable[..., Any], repo: Path
) -> None:
    result = fleet_cli(run, repo, "settings", "--only", "gamma", "--only", "alpha")
    assert result.exit_code == 0, result.output
    assert sorted(Path(a[a.index("-i") + 1]).name for a in calls(repo)) == ["alpha", "gamma"]
    (repo / "calls.jsonl").unlink()
    result = fleet_cli(run, repo, "settings", "--only", "alpha", "--only", "delta")
    assert result.exit_code == 1
    assert "--only: delta: not a member of" in result.output
    assert "expected one of alpha, beta, gamma" in result.output
    assert calls(repo) == [], "nothing ran"


def test_a_failed_canary_leaves_every_other_member_untouched(
    run: Callable[..., Any], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_FOR", "alpha")
    result = fleet_cli(run, repo, "upgrade", "--parallel", "3")
    assert result.exit_code == 1
    assert [Path(a[a.index("-i") + 1]).name for a in calls(repo)] == ["alpha"]
    assert "beta: not run (an earlier institution failed; untouched)" in result.output
    assert "gamma: not run" in result.output
    assert "alpha, beta, gamma did not succeed" in result.output


def test_an_upgrade_after_the_canary_goes_one_at_a_time_and_stops_at_the_first_failure(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_FOR", "beta")
    coop = cooperative.load(repo / "cooperative" / "cooperative.yml")
    slugs = fleet.choose(coop, [], repo / "inventories")
    passwords = fleet.password_files(slugs, repo / "passwords", repo / "inventories")
    outcomes = fleet.run(
        "upgrade", slugs, inventories=repo / "inventories", playbooks=repo / "playbooks",
        passwords=passwords, log_dir=repo / "logs", parallel=3,
    )  # fmt: skip
    assert [(o.slug, o.status) for o in outcomes] == [
        ("alpha", "ok"), ("beta", "failed"), ("gamma", "not run"),
    ]  # fmt: skip
    assert [Path(a[a.index("-i") + 1]).name for a in calls(repo)] == ["alpha", "beta"]


def test_a_missing_password_file_or_an_unknown_job_is_refused_before_anything_runs(
    run: Callable[..., Any], repo: Path
) -> None:
    (repo / "passwords" / "beta.txt").unlink()
    result = fleet_cli(run, repo, "backup")
    assert result.exit_code == 1
    assert "missing: " in result.output and "beta.txt" in result.output
    assert calls(repo) == []
    with pytest.raises(InstanceCliError, match="job: expected one of"):
        fleet.run("deploy-everything", ["alpha"], inventories=repo / "inventories",
                  playbooks=repo / "playbooks", passwords={}, log_dir=repo / "logs")  # fmt: skip
