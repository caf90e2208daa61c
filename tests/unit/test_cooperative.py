"""The cooperative's baseline (cooperative/cooperative.yml): members inherit what they do not
answer, their own answers win, `instance-cli diff` tells them apart, and a bad cooperative file
is refused naming the key, before anything is written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import COOPERATIVE, EXAMPLE_ANSWERS, EXAMPLE_PASS, REPO, load_module

from instance_cli import cooperative
from instance_cli.errors import ValidationError


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the committed cooperative file and the example's own answers."""
    (tmp_path / "cooperative").mkdir()
    shutil.copy(COOPERATIVE, tmp_path / "cooperative" / "cooperative.yml")
    shutil.copy(COOPERATIVE.parent / "blocklist.csv", tmp_path / "cooperative" / "blocklist.csv")
    (tmp_path / "inventories").mkdir()
    (tmp_path / "playbooks").mkdir()
    return tmp_path


def write_answers(repo: Path, **changes: Any) -> Path:
    own = yaml.safe_load(EXAMPLE_ANSWERS.read_text(encoding="utf-8"))
    own.update(changes)
    path = repo / "own-answers.yml"
    path.write_text(yaml.safe_dump(own, sort_keys=False), encoding="utf-8")
    return path


def make(run: Callable[..., Any], repo: Path, answers: Path) -> Any:
    return run(
        "new", "--answers", str(answers), "--output-dir", str(repo / "inventories"),
        "--vault-password-file", str(EXAMPLE_PASS),
    )  # fmt: skip


def main_vars(repo: Path) -> dict[str, Any]:
    text = (repo / "inventories/example/group_vars/all/main.yml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def test_the_committed_example_inherits_what_it_does_not_answer(
    run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result = run("diff", "example", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    origins = {k["key"]: k["origin"] for k in doc["keys"]}
    assert {k for k, o in origins.items() if o == "inherited"} == {
        "federation.mode", "retention.ip_days", "retention.session_days",
        "backup.retention_days", "rules", "mastodon.version",
    }  # fmt: skip
    assert origins["institution.slug"] == "own"
    assert "override" not in origins.values()


def test_an_own_answer_wins_over_the_baseline_and_diff_says_so(
    run: Callable[..., Any], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = write_answers(repo, retention={"ip_days": 3})
    assert make(run, repo, answers).exit_code == 0
    inherited = main_vars(repo)
    assert inherited["mastodon_ip_retention_days"] == 3  # its own
    assert inherited["mastodon_session_retention_days"] == 30  # the baseline's
    written = yaml.safe_load((repo / "inventories/example/answers.yml").read_text())
    assert written["retention"] == {"ip_days": 3}, "answers.yml keeps the institution's own only"
    monkeypatch.chdir(repo)
    result = run("diff", "example")
    assert result.exit_code == 0, result.output
    assert "1 overridden, 5 inherited" in result.output
    line = next(x for x in result.output.splitlines() if "retention.ip_days" in x)
    assert line.split() == ["overrides", "retention.ip_days", "3", "(baseline:", "7)"]
    # The channel: a member follows it unless it pins a version of its own.
    assert main_vars(repo)["mastodon_version"] == "v4.7.2"


def test_a_new_baseline_value_reaches_every_member_that_does_not_answer_it(
    run: Callable[..., Any], repo: Path
) -> None:
    path = repo / "cooperative" / "cooperative.yml"
    doc = yaml.safe_load(path.read_text())
    doc["baseline"]["retention"]["session_days"] = 14
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert make(run, repo, write_answers(repo)).exit_code == 0
    assert main_vars(repo)["mastodon_session_retention_days"] == 14


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["baseline"]["retention"].update(ip_dayz=3),
            "baseline.retention.ip_dayz: unknown key (did you mean retention.ip_days?)",
        ),
        (
            lambda d: d["members"].append("example"),
            "members[2]: example is already members[1]; each institution needs a slug of its own",
        ),
        (
            lambda d: d["baseline"].update(domains={"local": "coop.example"}),
            "baseline.domains.local: each institution answers this itself",
        ),
        (lambda d: d.update(channel="latest"), "channel: expected the release members follow"),
        (lambda d: d.update(chanel="v4.7.2"), "chanel: unknown key (did you mean channel?)"),
        (
            lambda d: d["baseline"]["retention"].update(ip_days=9999),
            "baseline.retention.ip_days:",
        ),
    ],
    ids=[
        "misspelled-key",
        "slug-collision",
        "own-only-key",
        "bad-channel",
        "bad-top-key",
        "bad-value",
    ],
)
def test_a_bad_cooperative_file_is_refused_naming_the_key_and_nothing_is_written(
    run: Callable[..., Any], repo: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    path = repo / "cooperative" / "cooperative.yml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ValidationError) as raised:
        cooperative.load(path)
    assert expected in str(raised.value)
    assert str(path) in str(raised.value)
    result = make(run, repo, write_answers(repo))
    assert result.exit_code == 1 and expected in result.output
    assert list((repo / "inventories").iterdir()) == []


def test_diff_of_an_institution_that_is_not_a_member_is_refused(
    run: Callable[..., Any], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repo / "cooperative" / "cooperative.yml"
    doc = yaml.safe_load(path.read_text())
    doc["members"] = ["other"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert make(run, repo, write_answers(repo)).exit_code == 0
    monkeypatch.chdir(repo)
    result = run("diff", "example")
    assert result.exit_code == 1
    assert "example: not a member of" in result.output and "(members: other)" in result.output
    # Not a member: its answers.yml is complete, nothing is inherited.
    written = yaml.safe_load((repo / "inventories/example/answers.yml").read_text())
    assert written["retention"]["ip_days"] == 7 and "rules" in written


# --- the shared blocklist ----------------------------------------------------------------------

FILTERS = load_module(
    "coop_settings_filters", REPO / "roles/instance_settings/filter_plugins/instance_settings.py"
)
HEADER = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"


def second_member(run: Callable[..., Any], repo: Path, **changes: Any) -> None:
    """A second institution of the same cooperative, with domains of its own."""
    path = repo / "cooperative" / "cooperative.yml"
    doc = yaml.safe_load(path.read_text())
    doc["members"] = ["example", "second"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    own = yaml.safe_load(EXAMPLE_ANSWERS.read_text(encoding="utf-8"))
    own["institution"] = {"name": "Second University", "short_name": "Second", "slug": "second"}
    own["domains"] = {"local": "second-university.edu", "web": "social.second-university.edu"}
    own["host"] = {**own["host"], "name": "second-1"}
    own.update(changes)
    answers = repo / "second-answers.yml"
    answers.write_text(yaml.safe_dump(own, sort_keys=False), encoding="utf-8")
    result = run(
        "new", "--answers", str(answers), "--output-dir", str(repo / "inventories"),
        "--vault-password-file", str(repo / "second.pass"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_member_applies_the_shared_blocklist_and_its_own_entry_wins(
    run: Callable[..., Any], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make(run, repo, write_answers(repo)).exit_code == 0
    own = repo / "inventories/example/community/domain-blocks.csv"
    own.write_text(HEADER + "loud.example,suspend,true,false,Our own decision,false\n")
    main = main_vars(repo)
    # Relative to ansible-playbook's playbook_dir, the repository's playbooks/.
    relative = main["instance_settings_shared_blocklist"].replace("{{ playbook_dir }}/", "")
    shared = repo / "playbooks" / relative
    assert shared.resolve() == (repo / "cooperative/blocklist.csv").resolve()
    monkeypatch.chdir(repo)
    result = run("blocklist", "diff", "example", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [b["domain"] for b in doc["added"]] == ["spam-farm.example", "harassment.example"]
    assert doc["own_wins"] == [{"domain": "loud.example", "own": "suspend", "shared": "silence"}]
    # What Ansible applies: the same merge, read by the role's own filters.
    blocks = FILTERS.parse_shared_blocklist(
        shared.read_text(), str(shared), main["instance_settings_cooperative_domains"]
    )
    merged = FILTERS.merge_shared_blocks(blocks, FILTERS.parse_blocklist(own.read_text()))
    assert {b["domain"]: b["severity"] for b in merged["blocks"]} == {
        "harassment.example": "suspend", "loud.example": "suspend", "spam-farm.example": "suspend",
    }  # fmt: skip
    assert merged["own_wins"] == ["loud.example"]


def test_members_know_each_other_and_allow_each_other_in_allow_list_mode(
    run: Callable[..., Any], repo: Path
) -> None:
    assert make(run, repo, write_answers(repo)).exit_code == 0
    second_member(run, repo, federation={"mode": "allowlist"})
    text = (repo / "inventories/second/group_vars/all/main.yml").read_text(encoding="utf-8")
    second = yaml.safe_load(text)
    assert second["instance_settings_limited_federation_mode"] is True
    domains = second["instance_settings_cooperative_domains"]
    assert domains == ["social.example-university.edu", "example-university.edu"]
    allows = FILTERS.cooperative_allows(
        FILTERS.normalize_domain_allows(["partner.example", "example-university.edu"]), domains
    )
    assert [a["domain"] for a in allows] == [
        "example-university.edu", "partner.example", "social.example-university.edu",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "example-university.edu,suspend,true,true,Looks odd,false",
            "line 2: example-university.edu would block social.example-university.edu, a member",
        ),
        (
            "edu,suspend,true,true,Every university,false",
            "is not a domain",
        ),
        (
            "university.edu.example-university.edu,silence,false,false,Below a member,false",
            "would block example-university.edu, a member of the cooperative",
        ),
        ("quiet.example,silence,false,false,,false", "line 2: quiet.example: expected its reason"),
        ("bad.example,obliterate,false,false,Why,false", "line 2: severity 'obliterate'"),
        ("a.example,silence,false,false,Why,false,extra", "line 2: malformed line: 7 fields"),
    ],
    ids=[
        "names-a-member",
        "not-a-domain",
        "below-a-member",
        "no-reason",
        "bad-severity",
        "extra-field",
    ],
)
def test_a_bad_shared_blocklist_line_is_refused_naming_file_and_line(
    run: Callable[..., Any], repo: Path, monkeypatch: pytest.MonkeyPatch, line: str, expected: str
) -> None:
    assert make(run, repo, write_answers(repo)).exit_code == 0
    shared = repo / "cooperative/blocklist.csv"
    shared.write_text(HEADER + line + "\n")
    monkeypatch.chdir(repo)
    result = run("blocklist", "diff", "example")
    assert result.exit_code == 1
    assert expected in result.output and "cooperative/blocklist.csv" in result.output
