"""The questionnaire schema: validation messages, unknown keys, defaults, the generated doc."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_testlib import REPO, example_raw

from instance_cli import answers as A
from instance_cli.errors import ValidationError
from instance_cli.reference import reference_markdown


def problems_of(raw: object) -> list[str]:
    with pytest.raises(ValidationError) as info:
        A.validate(raw)
    return info.value.problems


def test_example_answers_are_valid_and_defaults_are_filled() -> None:
    answers = A.validate(example_raw())
    assert answers["institution.slug"] == "example"
    assert answers["host.timezone"] == "Etc/UTC"
    assert answers["retention.media_cache_days"] is None
    assert len(answers["rules"]) == len(A.BASELINE_RULES)
    assert all(m["role"] in ("Moderator", "Admin") for m in answers["moderators"])


def test_bad_domain_message_names_field_expectation_and_value() -> None:
    raw = example_raw()
    raw["domains"]["local"] = "foo bar"
    assert problems_of(raw) == [
        'domains.local: expected a DNS domain like social.example.edu, got "foo bar"'
    ]


def test_every_problem_is_reported_at_once() -> None:
    raw = example_raw()
    raw["domains"]["local"] = "UPPER.example.edu"
    raw["admin"]["email"] = "not-an-email"
    raw["users"]["expected"] = "many"
    del raw["host"]["address"]
    raw["moderators"][0]["email"] = "x@"
    found = problems_of(raw)
    fields = [p.split(":")[0] for p in found]
    assert fields == [
        "domains.local",
        "admin.email",
        "users.expected",
        "moderators[1].email",
        "host.address",
    ]
    assert "host.address: missing, expected an IP address or DNS name" in found


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    raw = example_raw()
    raw["domains"]["locl"] = "x.example.edu"
    raw["colour"] = "blue"
    found = problems_of(raw)
    assert "domains.locl: unknown key (did you mean domains.local?)" in found
    assert any(p.startswith("colour: unknown key") for p in found)


def test_secrets_in_answers_are_rejected_with_the_env_var_to_use() -> None:
    raw = example_raw()
    raw["smtp"]["password"] = "hunter2hunter2"
    found = problems_of(raw)
    assert found == [
        "smtp.password: secrets do not belong in answers files; set "
        "INSTANCE_CLI_SMTP_PASSWORD in the environment instead"
    ]
    assert "hunter2" not in str(found)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.__setitem__("rules", [{"text": f"Rule {i}"} for i in range(11)]),
         "rules: expected a list of 1 to 10 rules"),
        (lambda r: r.__setitem__("rules", [{"text": "x" * 301}]),
         "rules[1].text: expected a rule of at most 300 characters, got \"xxx"),
        (lambda r: r.__setitem__("rules", [{"text": "ok", "hnt": ""}]),
         "rules[1].hnt: unknown key (expected hint, text)"),
        (lambda r: r.__setitem__("moderators", r["moderators"][:1]),
         "moderators: expected a list of 2 to 50 moderators"),
        (lambda r: r["moderators"][1].__setitem__("role", "Owner"),
         "moderators[2].role: expected one of Moderator, Admin"),
        (lambda r: r.__setitem__("languages", ["english"]),
         "languages: expected item 1 to be an ISO 639-1 language code like en"),
        (lambda r: r["users"].__setitem__("expected", 0),
         "users.expected: expected a number of users from 1 to 100000, got 0"),
        (lambda r: r["users"].__setitem__("expected", True),
         "users.expected: expected a number of users from 1 to 100000, got true"),
        (lambda r: r["registrations"].__setitem__("mode", "approved"),
         "registrations.mode: expected one of open, approval, closed"),
        (lambda r: r["backup"].__setitem__("repository", "ftp://nope"),
         "backup.repository: expected a restic repository"),
        (lambda r: r["admins"][0]["ssh_keys"].__setitem__(0, "ssh-dss AAAA"),
         "admins[1].ssh_keys: expected item 1 to be an OpenSSH public key line"),
        (lambda r: r.__setitem__("institution", "Example"),
         "institution: expected a mapping with keys name, short_name, slug"),
        (lambda r: r["domains"].__setitem__("web", "example-university.edu"),
         "domains.web: leave empty when it equals domains.local"),
        (lambda r: r["owner"].__setitem__("username", "alice"),
         "moderators: expected people other than the owner"),
        (lambda r: r["sso"].__setitem__("mode", "oidc"),
         "sso.oidc.issuer: required when sso.mode is oidc"),
        (lambda r: r["sso"].__setitem__("mode", "saml"),
         "sso.saml.idp_sso_url: required when sso.mode is saml"),
        (lambda r: r["institution"].__setitem__("slug", "Bad Slug"),
         "institution.slug: expected a short name of lower-case letters"),
        (lambda r: r["smtp"].__setitem__("from_address", "Name <nope>"),
         "smtp.from_address: expected an address like"),
    ],
)  # fmt: skip
def test_each_error_path_names_the_field(mutate: object, expected: str) -> None:
    raw = example_raw()
    mutate(raw)  # type: ignore[operator]
    found = problems_of(raw)
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize("doc", [None, [], "text", 42])
def test_top_level_must_be_a_mapping(doc: object) -> None:
    assert problems_of(doc)[0].startswith("expected a mapping of answers at the top level")


def test_yaml_syntax_error_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "a.yml"
    path.write_text("institution: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        A.load_answers_file(path)
    assert str(info.value).startswith("1 problem found:\n  a.yml: not valid YAML at line")


def test_oversized_and_non_utf8_files_are_rejected(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_text("x: " + "y" * (A.MAX_ANSWERS_BYTES + 1), encoding="utf-8")
    with pytest.raises(ValidationError, match="expected at most 1000000"):
        A.load_answers_file(big)
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"institution:\n  name: Universit\xe9\n")
    with pytest.raises(ValidationError, match="expected UTF-8 text"):
        A.load_answers_file(latin)


def test_slug_is_derived_from_short_name_unless_given() -> None:
    raw = example_raw()
    del raw["institution"]["slug"]
    del raw["host"]["name"]
    raw["institution"]["short_name"] = "Uni Göttingen 2"
    answers = A.validate(raw)
    assert answers["institution.slug"] == "uni-gottingen-2"
    assert A.slugify("42") == "institution"
    assert answers["host.name"] == "uni-gottingen-2-1"


def test_nest_roundtrips_through_validate() -> None:
    answers = A.validate(example_raw())
    assert A.validate(yaml.safe_load(yaml.safe_dump(A.nest(answers)))) == answers


def test_committed_answers_reference_matches_schema() -> None:
    committed = (REPO / "docs" / "answers-reference.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), (
        "docs/answers-reference.md drifted; run: instance-cli answers-reference "
        "> docs/answers-reference.md"
    )
    for field in A.SCHEMA:
        assert f"`{field.name}`" in committed


def test_deeply_nested_documents_are_refused_without_crashing(tmp_path: Path) -> None:
    # In a subprocess: without the guard, libyaml's constructor overflows the C stack.
    import subprocess
    import sys

    path = tmp_path / "deep.yml"
    path.write_text("institution:\n  name: " + "[" * 100_000 + "]" * 100_000 + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "instance_cli", "new", "--answers", str(path), "--output-dir",
         str(tmp_path / "inv"), "--dry-run"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "deep.yml: expected at most 20 levels of nesting, got more" in proc.stderr
    assert "Traceback" not in proc.stderr
