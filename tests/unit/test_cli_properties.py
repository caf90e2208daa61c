"""Property tests: generated bad answers files must each end in a clear error naming the field,
a non-zero exit code, no traceback and nothing written.

Each property runs through `counted`, which counts the files whose rejection was really asserted
(hypothesis may run fewer examples than asked for, and `assume` discards some) and fails when a
property asserted fewer than it promises; the unit tests' closing summary prints the counts."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import example_raw
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from instance_cli import answers as A
from instance_cli.cli import cli

SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
RUNNER = CliRunner()
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[leaf] = value


def del_path(raw: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = raw
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def run_new(document: str) -> tuple[int, str, list[str]]:
    """Run `new --answers` on the document; return exit code, all output, what was written."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        answers = root / "answers.yml"
        answers.write_text(document, encoding="utf-8")
        out, config = root / "inventories", root / "config"
        result = RUNNER.invoke(
            cli,
            ["new", "--answers", str(answers), "--output-dir", str(out)],
            env={
                "INSTANCE_CLI_CONFIG_DIR": str(config),
                "ANSIBLE_VAULT_PASSWORD_FILE": None,
                "INSTANCE_CLI_SMTP_PASSWORD": None,
            },
        )
        written = [str(p) for p in (out, config) if p.exists()]
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        return result.exit_code, result.output, written


# property -> generated files whose rejection was asserted (read by conftest's summary)
ASSERTED: dict[str, int] = {}
_current: list[str] = []


def counted(prop: Callable[[], None], promised: int) -> None:
    """Run a hypothesis property; fail unless it asserted at least `promised` generated files."""
    name = prop.__name__.lstrip("_")
    ASSERTED[name] = 0
    _current.append(name)
    try:
        prop()
    finally:
        _current.pop()
    assert ASSERTED[name] >= promised, (
        f"{name}: only {ASSERTED[name]} generated files asserted, {promised} promised"
    )


def _count() -> None:
    if _current:
        ASSERTED[_current[-1]] += 1


def assert_rejected(raw: Any, *fields: str) -> None:
    document = yaml.dump(raw, Dumper=DUMPER, allow_unicode=True, sort_keys=False)
    code, output, written = run_new(document)
    assert code == 1, output
    assert "Error: " in output
    assert "Traceback" not in output
    assert written == []
    for name in fields:
        assert name in output, (name, output[:2000])
    _count()


# --- bad values by type -----------------------------------------------------------------

NON_TEXT = st.one_of(
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)


def bad_for(field: A.Field) -> st.SearchStrategy[Any]:
    t = field.type
    if isinstance(t, A.Text):
        return st.one_of(
            NON_TEXT,
            st.text(min_size=t.max_len + 1, max_size=t.max_len + 300).map(lambda s: "x" + s),
            st.just("y" * 200_000),
            TEXT.map(lambda s: f" {s}\n"),  # surrounding space / multi-line
        )
    if isinstance(t, A.OptionalInt | A.Int):
        return st.one_of(
            st.integers(max_value=t.lo - 1),
            st.integers(min_value=t.hi + 1),
            st.booleans(),
            st.floats(allow_nan=False),
            TEXT,
            st.lists(st.integers(), max_size=2),
        ) | (st.none() if not isinstance(t, A.OptionalInt) else st.nothing())
    if isinstance(t, A.Choice):
        return st.one_of(NON_TEXT, TEXT.filter(lambda s: s not in t.options))
    if isinstance(t, A.ListOf):
        return st.one_of(
            st.integers(),
            TEXT,
            st.none(),
            st.lists(st.integers() | st.none() | st.booleans(), min_size=1, max_size=5),
            st.just(["en"] * 2),  # duplicates
            st.just(["zz"] * (t.max_items + 1)),
        )
    if isinstance(t, A.Records):
        return st.one_of(
            TEXT,
            st.integers(),
            st.none(),
            st.lists(TEXT | st.integers(), min_size=1, max_size=3),
            # at least one record without its required keys ([] is valid where min_items is 0)
            st.lists(st.just({}), min_size=max(t.min_items, 1), max_size=t.min_items + 2),
            st.lists(st.just({"unexpected": 1}), min_size=1, max_size=3),
            st.just([{} for _ in range(t.max_items + 1)]),
        )
    raise AssertionError(field)  # pragma: no cover


@st.composite
def field_with_bad_value(draw: Callable[..., Any]) -> tuple[str, Any]:
    field = draw(st.sampled_from(A.SCHEMA))
    return field.name, draw(bad_for(field))


@settings(max_examples=400, **SETTINGS)
@given(field_with_bad_value())
def _wrong_types_and_sizes_are_rejected(case: tuple[str, Any]) -> None:
    name, value = case
    raw = example_raw()
    set_path(raw, name, value)
    assert_rejected(raw, name)


def test_wrong_types_and_sizes_are_rejected() -> None:
    counted(_wrong_types_and_sizes_are_rejected, 400)


# --- missing keys -------------------------------------------------------------------------

REQUIRED = [f.name for f in A.SCHEMA if f.required]


@settings(max_examples=150, **SETTINGS)
@given(st.lists(st.sampled_from(REQUIRED), min_size=1, max_size=6, unique=True))
def _missing_required_answers_are_each_named(names: list[str]) -> None:
    raw = example_raw()
    for name in names:
        del_path(raw, name)
    assert_rejected(raw, *[f"{n}: missing" for n in names])


def test_missing_required_answers_are_each_named() -> None:
    counted(_missing_required_answers_are_each_named, 150)


# --- bad domains and emails ---------------------------------------------------------------

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True)
BAD_DOMAIN = st.one_of(
    st.builds(
        lambda a, bad, b: f"{a}{bad}{b}",
        LABEL,
        st.sampled_from([" ", "_", "..", "Ü", "é", "*", "/", "@", "A", "-.", ":", "\t", "ß"]),
        st.sampled_from([".example.edu", "example.org", ""]),
    ),
    LABEL,  # a single label is not a domain
    LABEL.map(lambda s: s + ".example.edu."),
    LABEL.map(lambda s: "-" + s + ".edu"),
    LABEL.map(lambda s: "x" * 64 + "." + s + ".edu"),
    LABEL.map(lambda s: s + ".123"),
    st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=128), min_size=1).map(
        lambda s: s + ".edu"
    ),
)
BAD_EMAIL = st.one_of(
    LABEL,
    BAD_DOMAIN.map(lambda d: "someone@" + d),
    st.builds(lambda a, b: f"{a}@@{b}.edu", LABEL, LABEL),
    st.builds(lambda a, b: f"{a} x@{b}.edu", LABEL, LABEL),
    st.builds(lambda a, b: f"{a}ü@{b}.edu", LABEL, LABEL),
)
DOMAIN_FIELDS = ["domains.local", "domains.web", "smtp.host"]
EMAIL_FIELDS = ["admin.email", "privacy.dpo_email"]


@st.composite
def bad_domain_or_email(draw: Callable[..., Any]) -> tuple[dict[str, Any], str]:
    raw = example_raw()
    kind = draw(st.sampled_from(["domain", "email", "allowlist", "moderator"]))
    if kind == "domain":
        name = draw(st.sampled_from(DOMAIN_FIELDS))
        set_path(raw, name, draw(BAD_DOMAIN))
    elif kind == "email":
        name = draw(st.sampled_from(EMAIL_FIELDS))
        set_path(raw, name, draw(BAD_EMAIL))
    elif kind == "allowlist":
        name = "registrations.email_domains"
        set_path(raw, name, ["example-university.edu", draw(BAD_DOMAIN)])
    else:
        index = draw(st.integers(0, 1))
        raw["moderators"][index]["email"] = draw(BAD_EMAIL)
        name = f"moderators[{index + 1}].email"
    return raw, name


@settings(max_examples=200, **SETTINGS)
@given(bad_domain_or_email())
def _bad_domains_and_emails_are_rejected(case: tuple[dict[str, Any], str]) -> None:
    raw, name = case
    assert_rejected(raw, name)


def test_bad_domains_and_emails_are_rejected() -> None:
    counted(_bad_domains_and_emails_are_rejected, 200)


# --- rules --------------------------------------------------------------------------------

RULE = st.fixed_dictionaries(
    {"text": st.from_regex(r"[A-Za-z][A-Za-z ]{0,40}[a-z.]", fullmatch=True)}
)


@st.composite
def bad_rules(draw: Callable[..., Any]) -> tuple[Any, str]:
    kind = draw(st.sampled_from(["too_many", "too_long", "empty", "hint", "shape"]))
    rules = draw(st.lists(RULE, min_size=1, max_size=9))
    if kind == "too_many":
        return draw(st.lists(RULE, min_size=11, max_size=30)), "rules"
    index = draw(st.integers(0, len(rules) - 1))
    if kind == "too_long":
        rules[index] = {"text": "R" + draw(st.text(min_size=300, max_size=3000)).replace("\n", " ")}
        return rules, f"rules[{index + 1}].text"
    if kind == "empty":
        rules[index] = {"text": "", "hint": "x"}
        return rules, f"rules[{index + 1}].text"
    if kind == "hint":
        rules[index] = {"text": "Be kind.", "hint": "h" * draw(st.integers(1001, 50_000))}
        return rules, f"rules[{index + 1}].hint"
    rules[index] = draw(st.one_of(TEXT, st.integers(), st.none(), st.just({"hint": "no text"})))
    return rules, f"rules[{index + 1}]"


@settings(max_examples=150, **SETTINGS)
@given(bad_rules())
def _bad_rules_are_rejected(case: tuple[Any, str]) -> None:
    rules, name = case
    raw = example_raw()
    raw["rules"] = rules
    assert_rejected(raw, name)


def test_bad_rules_are_rejected() -> None:
    counted(_bad_rules_are_rejected, 150)


# --- unknown keys, unicode ------------------------------------------------------------------

KNOWN = set(A.FIELDS) | set(A.GROUPS) | set(A.SECRET_ENV)
KEY = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80).filter(
    lambda k: k not in KNOWN and k != "<<" and not k.startswith("sso.") and "." not in k
)


@settings(max_examples=150, **SETTINGS)
@given(KEY, st.sampled_from(["", "domains", "privacy", "sso", "backup"]), NON_TEXT | TEXT)
def _unknown_keys_are_rejected_by_name(key: str, group: str, value: Any) -> None:
    raw = example_raw()
    (raw.setdefault(group, {}) if group else raw)[key] = value
    dotted = f"{group}.{key}" if group else key
    assume(dotted not in KNOWN)  # a real key after all (e.g. sso.mode): not a bad file
    assert_rejected(raw, A.keyname(dotted), "unknown key")


def test_unknown_keys_are_rejected_by_name() -> None:
    counted(_unknown_keys_are_rejected_by_name, 150)


# --- not an answers document at all ---------------------------------------------------------


@settings(max_examples=100, **SETTINGS)
@given(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
        st.lists(TEXT, max_size=5).map(yaml.safe_dump),
        st.just("institution: {name: [unclosed\n"),
        st.just("a: &x [*x]\n"),
        st.integers(21, 3000).map(lambda n: "languages: " + "[" * n + "]" * n + "\n"),
    )
)
def _garbage_files_end_in_a_clear_error(document: str) -> None:
    code, output, written = run_new(document)
    assert code == 1, output
    assert output.startswith("Error: ")
    assert "Traceback" not in output
    assert written == []
    _count()


def test_garbage_files_end_in_a_clear_error() -> None:
    counted(_garbage_files_end_in_a_clear_error, 100)


def test_a_property_that_skips_its_assertion_fails_the_count() -> None:
    # As test_unknown_keys_are_rejected_by_name was when it returned early for real keys.
    calls = [0]

    @settings(max_examples=30, **SETTINGS)
    @given(st.integers(0, 1000))
    def _sometimes(n: int) -> None:
        calls[0] += 1
        if calls[0] % 2:  # every other example returns before asserting anything
            return
        _count()

    try:
        with pytest.raises(AssertionError, match="generated files asserted, 30 promised"):
            counted(_sometimes, 30)
    finally:
        ASSERTED.pop("sometimes", None)
