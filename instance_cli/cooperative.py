"""The cooperative: the institutions of one repository and what they share (docs/cooperative.md).

`cooperative/cooperative.yml` names the members (each an `inventories/<slug>/`), the upgrade
channel (the reviewed release they follow) and a baseline: answers, in the answers file's own
keys, that every member inherits unless its own `answers.yml` gives the key. `instance-cli new`
reads a member's answers over the baseline; `instance-cli diff SLUG` shows, key by key, what the
member overrides, what it inherits and what it sets on its own.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from instance_cli import answers as A
from instance_cli.errors import InstanceCliError, ValidationError
from instance_cli.fieldtypes import show

COOPERATIVE_FILE = Path("cooperative") / "cooperative.yml"
TOP_KEYS = ("name", "members", "channel", "baseline", "blocklist")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,39}$")
CHANNEL = re.compile(r"v\d+\.\d+\.\d+$")
# What only an institution can answer for itself: a baseline that sets one of these is refused.
OWN_ONLY = (
    "institution.",
    "domains.",
    "admin.",
    "owner.",
    "host.",
    "privacy.dpo_",
    "smtp.",
    "sso.",
    "backup.repository",
    "backup.escrow",
    "moderators",
    "admins",
    "analytics.courses",
)


@dataclass(frozen=True)
class Cooperative:
    path: Path
    name: str
    members: tuple[str, ...]
    channel: str
    baseline: dict[str, Any]  # nested, as in an answers file
    flat_baseline: A.Answers  # dotted keys, each checked against the answers schema
    blocklist: Path | None = None  # the shared blocklist (Mastodon's CSV import format)


@dataclass(frozen=True)
class Membership:
    """What an institution's inventory takes from the cooperative it is a member of."""

    own_keys: frozenset[str]  # the answers it gives itself (answers.yml keeps only these)
    domains: tuple[str, ...]  # the other members' domains (allowed, never blocked)
    blocklist: Path | None  # the shared blocklist


def _own_only(key: str) -> bool:
    return any(key == p or (p.endswith((".", "_")) and key.startswith(p)) for p in OWN_ONLY)


def _check_baseline(raw: Any, problems: list[str]) -> A.Answers:
    if not isinstance(raw, dict):
        problems.append(f"baseline: expected a mapping of answers, got {show(raw)}")
        return {}
    if "mastodon" in raw and isinstance(raw["mastodon"], dict) and "version" in raw["mastodon"]:
        problems.append(
            "baseline.mastodon.version: the channel says which release members follow;"
            " expected it as channel, not in the baseline"
        )
    found: list[str] = []
    flat = A.flatten(raw, found, prefix="")
    problems += [f"baseline.{p}" for p in found]
    checked: A.Answers = {}
    for key, value in flat.items():
        if _own_only(key):
            problems.append(
                f"baseline.{key}: each institution answers this itself; expected it in the"
                " institution's answers.yml, not in the baseline"
            )
            continue
        mine: list[str] = []
        result = A.check_field(A.FIELDS[key], value, mine)
        problems += [f"baseline.{p}" for p in mine]
        if not mine:
            checked[key] = result
    return checked


def load(path: Path) -> Cooperative:
    """Read and check cooperative.yml; every problem at once, each naming its key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InstanceCliError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ValidationError([f"not valid YAML{where}"], source=str(path)) from None
    if not isinstance(raw, dict):
        raise ValidationError(
            [f"expected a mapping with keys {', '.join(TOP_KEYS)}, got {show(raw)}"],
            source=str(path),
        )
    problems: list[str] = []
    for key in raw:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key}: unknown key{hint}; expected {', '.join(TOP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"name: expected the cooperative's name, got {show(name)}")
    members = raw.get("members")
    slugs: list[str] = []
    if not isinstance(members, list) or not members:
        problems.append(f"members: expected a list of institution slugs, got {show(members)}")
    else:
        for i, slug in enumerate(members, start=1):
            if not isinstance(slug, str) or not SLUG.match(slug):
                problems.append(
                    f"members[{i}]: expected a slug (lower-case letters, digits, "
                    f"dashes), got {show(slug)}"
                )
            elif slug in slugs:
                problems.append(
                    f"members[{i}]: {slug} is already members[{slugs.index(slug) + 1}]"
                    "; each institution needs a slug of its own"
                )
            else:
                slugs.append(slug)
    channel = raw.get("channel")
    if not isinstance(channel, str) or not CHANNEL.match(channel):
        problems.append(
            f"channel: expected the release members follow, like v4.7.2, got {show(channel)}"
        )
    else:
        mine: list[str] = []
        A.check_field(A.FIELDS["mastodon.version"], channel, mine)
        problems += [f"channel: {p.split(': ', 1)[-1]}" for p in mine]
    blocklist = raw.get("blocklist")
    if blocklist is not None and (
        not isinstance(blocklist, str) or not (path.parent / blocklist).is_file()
    ):
        problems.append(
            f"blocklist: expected a CSV file beside {path.name}, got {show(blocklist)}"
            + (" (no such file)" if isinstance(blocklist, str) else "")
        )
    baseline = raw.get("baseline") or {}
    flat = _check_baseline(baseline, problems)
    if problems:
        raise ValidationError(problems, source=str(path))
    # Members follow the channel unless their own answers pin a version.
    flat["mastodon.version"] = channel
    baseline = merged(baseline, {"mastodon": {"version": channel}})
    shared = path.parent / blocklist if isinstance(blocklist, str) else None
    return Cooperative(
        path, str(name).strip(), tuple(slugs), str(channel), dict(baseline), flat, shared
    )


def find(inventories: Path, explicit: Path | None = None) -> Cooperative | None:
    """The cooperative file given, or the one beside the inventories directory, if any."""
    if explicit is not None:
        return load(explicit)
    candidate = inventories.resolve().parent / COOPERATIVE_FILE
    return load(candidate) if candidate.is_file() else None


def merged(baseline: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """The institution's raw answers over the baseline: mappings merge key by key, anything else
    (a list, a text, a number) is the institution's when it gives the key."""
    out = copy.deepcopy(dict(baseline))
    for key, value in own.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def member_answers(coop: Cooperative | None, own: Any) -> Any:
    """The raw answers an institution's inventory is made from: its own over the baseline when
    its slug is one of the cooperative's members, its own alone otherwise."""
    if coop is None or not isinstance(own, dict):
        return own
    institution = own.get("institution")
    slug = institution.get("slug") if isinstance(institution, dict) else None
    return merged(coop.baseline, own) if slug in coop.members else own


@dataclass(frozen=True)
class KeyOrigin:
    key: str
    origin: str  # override | inherited | same | own
    value: Any
    baseline: Any = None


def diff(coop: Cooperative, own_raw: Any, source: str) -> list[KeyOrigin]:
    """Key by key: what the institution overrides, inherits from the baseline, repeats with the
    baseline's value, or answers on its own (the baseline does not have the key)."""
    problems: list[str] = []
    own = A.flatten(own_raw, problems) if isinstance(own_raw, dict) else {}
    if problems or not isinstance(own_raw, dict):
        raise ValidationError(problems or ["expected a mapping of answers"], source=source)
    rows: list[KeyOrigin] = []
    for key in [f.name for f in A.SCHEMA]:
        if key in coop.flat_baseline and key in own:
            checked = A.check_field(A.FIELDS[key], own[key], [])
            origin = "same" if checked == coop.flat_baseline[key] else "override"
            rows.append(KeyOrigin(key, origin, own[key], coop.flat_baseline[key]))
        elif key in coop.flat_baseline:
            rows.append(
                KeyOrigin(key, "inherited", coop.flat_baseline[key], coop.flat_baseline[key])
            )
        elif key in own:
            rows.append(KeyOrigin(key, "own", own[key]))
    return rows


def member_domains(coop: Cooperative, inventories: Path, slug: str) -> tuple[str, ...]:
    """The domains of every other member whose inventory exists: its web and local domain."""
    domains: list[str] = []
    for other in coop.members:
        main = inventories / other / "group_vars" / "all" / "main.yml"
        if other == slug or not main.is_file():
            continue
        doc = yaml.safe_load(main.read_text(encoding="utf-8")) or {}
        for key in ("nginx_server_name", "nginx_local_domain"):
            value = doc.get(key)
            if isinstance(value, str) and value and value not in domains:
                domains.append(value)
    return tuple(domains)


def membership(coop: Cooperative | None, raw: Any, inventories: Path) -> Membership | None:
    """The membership of the institution whose raw answers these are, or None."""
    if coop is None or not isinstance(raw, dict):
        return None
    institution = raw.get("institution")
    slug = institution.get("slug") if isinstance(institution, dict) else None
    if slug not in coop.members:
        return None
    own = frozenset(A.flatten(raw, []))
    return Membership(own, member_domains(coop, inventories, str(slug)), coop.blocklist)


# --- the shared blocklist -------------------------------------------------------------------

_FILTERS = Path(__file__).resolve().parents[1] / "roles/instance_settings/filter_plugins"


def _role_filters() -> Any:
    """roles/instance_settings' parsers, the ones Ansible applies: one reading of the CSV."""
    spec = importlib.util.spec_from_file_location(
        "instance_cli_settings_filters", _FILTERS / "instance_settings.py"
    )
    if spec is None or spec.loader is None:  # pragma: no cover - the checkout is broken
        raise InstanceCliError(f"cannot load {_FILTERS}/instance_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class BlocklistDiff:
    added: list[dict[str, Any]]  # shared blocks the institution does not list itself
    own_wins: list[tuple[dict[str, Any], dict[str, Any]]]  # (its own entry, the shared one)
    own: int  # the institution's own blocks


def blocklist_diff(coop: Cooperative, inv: Path) -> BlocklistDiff:
    """What applying the cooperative's shared blocklist to the institution at `inv` changes,
    read with the role's own parsers: the blocks it adds, and the domains where the
    institution's own entry wins. A malformed line, or one that would block a member, is an
    error naming the file and line."""
    if coop.blocklist is None:
        raise InstanceCliError(f"{coop.path}: no blocklist: expected blocklist: FILE.csv")
    f = _role_filters()
    main = yaml.safe_load((inv / "group_vars" / "all" / "main.yml").read_text("utf-8")) or {}
    members = member_domains(coop, inv.parent, "")  # every member's, this one's too
    own_csv = inv / "community" / "domain-blocks.csv"
    try:
        shared = f.parse_shared_blocklist(
            coop.blocklist.read_text(encoding="utf-8"), str(coop.blocklist), list(members)
        )
        from_file = (
            f.parse_blocklist(own_csv.read_text(encoding="utf-8"), str(own_csv))
            if own_csv.is_file()
            else []
        )
        own = f.merge_domain_blocks(
            from_file,
            f.normalize_domain_blocks(main.get("instance_settings_domain_blocks") or []),
            str(own_csv),
        )
    except f.InstanceSettingsError as exc:
        raise InstanceCliError(str(exc)) from None
    merged = f.merge_shared_blocks(shared, own)
    by_domain = {block["domain"]: block for block in own}
    return BlocklistDiff(
        added=[b for b in shared if b["domain"] in merged["added"]],
        own_wins=[(by_domain[b["domain"]], b) for b in shared if b["domain"] in merged["own_wins"]],
        own=len(own),
    )
