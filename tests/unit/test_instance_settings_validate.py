"""The instance_settings role's controller-side validators: file, line and reason on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_testlib import load_module
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "roles/instance_settings/filter_plugins/instance_settings.py"


f = load_module("instance_settings_filters", PLUGIN)
Err = f.InstanceSettingsError

HEADER = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"


def rules_yaml(count: int, text: str = "Be kind") -> str:
    return "rules:\n" + "".join(f'  - text: "{text} {i}"\n    hint: ""\n' for i in range(count))


# --- rules.yml -------------------------------------------------------------------------------


def test_rules_parse_in_file_order_with_hints() -> None:
    text = 'rules:\n  - text: "First"\n    hint: "Why"\n  - text: Second\n'
    assert f.parse_rules(text) == [
        {"text": "First", "hint": "Why"},
        {"text": "Second", "hint": ""},
    ]


def test_ten_rules_are_accepted_eleventh_is_rejected_with_its_line() -> None:
    assert len(f.parse_rules(rules_yaml(10))) == 10
    with pytest.raises(Err) as err:
        f.parse_rules(rules_yaml(11), "inv/community/rules.yml")
    # Each rule takes two lines after the "rules:" line: rule 11 starts on line 22.
    assert "inv/community/rules.yml, line 22:" in str(err.value)
    assert "at most 10 rules" in str(err.value)


def test_rule_of_300_characters_passes_301_fails_with_line() -> None:
    ok = "rules:\n  - text: " + "a" * 300 + "\n"
    assert f.parse_rules(ok)[0]["text"] == "a" * 300
    bad = "rules:\n  - text: short\n  - text: " + "é" * 301 + "\n"
    with pytest.raises(Err) as err:
        f.parse_rules(bad, "rules.yml")
    assert str(err.value).startswith("rules.yml, line 3: rule 2: text is 301 characters")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("rules:\n  - text: ''\n", 2, "'text' is empty"),
        ("rules:\n  - text: a\n    title: b\n", 2, "unknown key(s) title"),
        ("rules:\n  - hint: only\n", 2, "'text' must be a string"),
        ("rules:\n  - just a string\n", 2, "must be a mapping"),
        ("rule:\n  - text: a\n", 1, "unknown key 'rule'"),
        ("rules: [\n", 2, "not valid YAML"),
        ("rules: nope\n", 1, "'rules' must be a list"),
    ],
)
def test_bad_rules_name_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(Err) as err:
        f.parse_rules(text, "rules.yml")
    assert f"rules.yml, line {line}:" in str(err.value)
    assert reason in str(err.value)


def test_rule_text_with_quotes_backslashes_and_interpolation_is_kept_verbatim() -> None:
    tricky = 'Don\'t "quote" me \\n #{`id`} ${HOME} {{ x }} — ünïcödé 🐘'
    text = "rules:\n  - text: " + repr_yaml(tricky) + "\n    hint: " + repr_yaml(tricky) + "\n"
    assert f.parse_rules(text) == [{"text": tricky, "hint": tricky}]


def repr_yaml(value: str) -> str:
    import yaml

    return yaml.safe_dump(value, allow_unicode=True).removesuffix("\n...\n").strip()


# Control characters are left out: PyYAML's dumper writes U+0085 raw, which YAML reads as a
# line break; that is the generator's limit, not the parser's.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


@given(st.lists(st.text(PRINTABLE, min_size=1, max_size=300).filter(str.strip), max_size=10))
def test_any_valid_rule_list_round_trips(texts: list[str]) -> None:
    import yaml

    doc = yaml.safe_dump({"rules": [{"text": t, "hint": ""} for t in texts]}, allow_unicode=True)
    assert [r["text"] for r in f.parse_rules(doc)] == texts


# --- domain-blocks.csv -----------------------------------------------------------------------


def test_blocklist_in_mastodon_export_format() -> None:
    csv_text = (
        HEADER
        + "spam.example,suspend,true,true,Spam source,false\n"
        + "\n"
        + 'loud.example,silence,false,false,"Noisy, often",true\n'
    )
    blocks = f.parse_blocklist(csv_text, private_comment="from csv")
    assert blocks == [
        {
            "domain": "spam.example",
            "severity": "suspend",
            "reject_media": True,
            "reject_reports": True,
            "private_comment": "from csv",
            "public_comment": "Spam source",
            "obfuscate": False,
        },
        {
            "domain": "loud.example",
            "severity": "silence",
            "reject_media": False,
            "reject_reports": False,
            "private_comment": "from csv",
            "public_comment": "Noisy, often",
            "obfuscate": True,
        },
    ]


def test_blocklist_without_header_and_short_rows_uses_defaults() -> None:
    blocks = f.parse_blocklist("Bad.Example\nmüll.example,noop\n")
    assert [(b["domain"], b["severity"]) for b in blocks] == [
        ("bad.example", "suspend"),
        ("xn--mll-hoa.example", "noop"),
    ]


def test_blocklist_header_columns_in_another_order() -> None:
    blocks = f.parse_blocklist("#severity,#domain\nsilence,a.example\n")
    assert blocks[0]["domain"] == "a.example" and blocks[0]["severity"] == "silence"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("bad.example,ban,false,false,,false", "severity 'ban' is not one of"),
        ("not_a_domain,suspend,false,false,,false", "is not a domain"),
        ("localhost,suspend,false,false,,false", "needs at least two labels"),
        ("*.example.org,suspend,false,false,,false", "is not a domain"),
        ("a.example,suspend,maybe,false,,false", "reject_media: 'maybe' is not a boolean"),
        ("a.example,suspend,false,false,,false,extra", "malformed line: 7 fields"),
        ('a.example,suspend,false,false,"unterminated', "malformed CSV line"),
        ("1.2.3.4,suspend", "the top-level label is numeric"),
        (",suspend", "domain is empty"),
    ],
)
def test_bad_blocklist_line_names_file_line_and_reason(line: str, reason: str) -> None:
    text = HEADER + "ok.example,suspend,false,false,,false\n" + line + "\n"
    with pytest.raises(Err) as err:
        f.parse_blocklist(text, "inv/community/domain-blocks.csv")
    assert str(err.value).startswith("inv/community/domain-blocks.csv, line 3: ")
    assert reason in str(err.value)


def test_duplicate_domain_in_csv_names_both_lines() -> None:
    with pytest.raises(Err, match=r"line 3: a.example is already listed on line 2"):
        f.parse_blocklist(HEADER + "a.example\nA.EXAMPLE.\n", "x.csv")


def test_unknown_header_column_is_rejected() -> None:
    with pytest.raises(Err, match=r"line 1: unknown header column\(s\) #reason"):
        f.parse_blocklist("#domain,#reason\n", "x.csv")


# --- inventory lists -------------------------------------------------------------------------


def test_inventory_blocks_default_and_merge_sorted() -> None:
    inv = f.normalize_domain_blocks(
        [{"domain": "b.example", "severity": "silence", "private_comment": "why"}, "c.example"]
    )
    csv_blocks = f.parse_blocklist("a.example\n")
    merged = f.merge_domain_blocks(csv_blocks, inv)
    assert [b["domain"] for b in merged] == ["a.example", "b.example", "c.example"]
    assert merged[1]["private_comment"] == "why" and merged[2]["severity"] == "suspend"


def test_domain_in_csv_and_inventory_is_rejected() -> None:
    with pytest.raises(Err, match=r"instance_settings_domain_blocks\[0\]: a.example is also in"):
        f.merge_domain_blocks(
            f.parse_blocklist("a.example\n"), f.normalize_domain_blocks(["a.example"])
        )


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ([{"domain": "x.example", "severity": "ban"}], "severity 'ban'"),
        ([{"domain": "x.example", "reject_media": "yes"}], "reject_media must be true or false"),
        ([{"domain": "x.example", "colour": "red"}], "unknown key(s) colour"),
        ([{"domain": "nope"}], "is not a domain"),
        (["x.example", "X.example"], "listed twice"),
    ],
)
def test_bad_inventory_blocks(items: list[Any], reason: str) -> None:
    with pytest.raises(Err) as err:
        f.normalize_domain_blocks(items)
    assert reason in str(err.value)


def test_domain_allows() -> None:
    assert f.normalize_domain_allows(["b.example", {"domain": "A.example"}]) == [
        {"domain": "a.example"},
        {"domain": "b.example"},
    ]
    with pytest.raises(Err, match="is not a domain"):
        f.normalize_domain_allows(["under_score.example"])


@given(
    st.lists(
        st.from_regex(r"[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,5})?", fullmatch=True),
        min_size=2,
        max_size=4,
    )
)
def test_generated_host_names_are_domains(labels: list[str]) -> None:
    name = ".".join(labels)
    assert f.normalize_domain(name) == name


@given(st.text(alphabet=" _*/:@!,;", min_size=1, max_size=20))
def test_punctuation_is_never_a_domain(value: str) -> None:
    with pytest.raises(ValueError):
        f.normalize_domain(value + ".example")


# --- settings and staff ----------------------------------------------------------------------


def test_known_extra_settings_pass_unknown_key_fails() -> None:
    good = {"trends": False, "show_domain_blocks": "users", "backups_retention_period": 7}
    assert f.validate_site_settings(good) == good
    with pytest.raises(Err) as err:
        f.validate_site_settings({"site_titel": "typo"})
    assert str(err.value).startswith("instance_settings_site_settings: unknown setting key")
    assert "'site_titel'" in str(err.value)


@pytest.mark.parametrize(
    "settings",
    [{"trends": "yes"}, {"backups_retention_period": True}, {"show_domain_blocks": "everyone"}],
)
def test_extra_settings_of_wrong_type_fail(settings: dict[str, Any]) -> None:
    with pytest.raises(Err):
        f.validate_site_settings(settings)


STAFF = [
    {"username": "alice", "email": "alice@uni.example", "role": "Moderator"},
    {"username": "bob", "email": "bob@uni.example", "role": "Admin"},
]


def test_staff_of_two_passes() -> None:
    assert f.validate_staff(STAFF, "admin") == STAFF


@pytest.mark.parametrize(
    ("staff", "reason"),
    [
        (STAFF[:1], "at least 2 moderators or admins"),
        ([*STAFF, {"username": "admin", "email": "a@b.example", "role": "Admin"}], "is the owner"),
        ([*STAFF, {"username": "carol", "email": "c@b.example", "role": "Owner"}], "role 'Owner'"),
        ([*STAFF, {"username": "carol", "email": "nope", "role": "Admin"}], "not an e-mail"),
        ([*STAFF, {"username": "ca rol", "email": "c@b.example", "role": "Admin"}], "username"),
        ([*STAFF, {"username": "Bob", "email": "c@b.example", "role": "Admin"}], "listed twice"),
    ],
)
def test_bad_staff(staff: list[dict[str, str]], reason: str) -> None:
    with pytest.raises(Err) as err:
        f.validate_staff(staff, "admin")
    assert reason in str(err.value)
