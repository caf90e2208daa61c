"""Controller-side release arithmetic of the role mastodon (playbooks/upgrade.yml).

`mastodon_release_facts` checks the release table (files/releases.yml, or the file an inventory
names) and returns it normalised; `mastodon_upgrade_plan` turns "running vA, asked for vB, the
repository has these tags" into the ordered releases to deploy, or a refusal whose message
says what is missing. Both raise AnsibleFilterError with the field and what was expected, so a
bad table or a bad request stops the play before anything on the server changes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ansible.errors import AnsibleFilterError  # type: ignore[import-untyped]

TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
SERIES = re.compile(r"^\d+\.\d+$")
MINIMUM_KEYS = ("ruby", "nodejs", "postgresql", "redis")
STEP_PHASES = ("before_migrations", "after_post_migrations")
STEP_KEYS = frozenset({"description", "phase", "argv"})
SERIES_KEYS = frozenset({"supported_until", "reviewed", "minimums", "build_memory_mb", "steps"})


def parse_tag(tag: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release tag vX.Y.Z; None for anything else (pre-releases)."""
    match = TAG.match(str(tag).strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def tag_key(tag: str) -> tuple[int, int, int]:
    """Sort key of a release tag (tags that do not parse sort first)."""
    return parse_tag(tag) or (0, 0, 0)


def series_of(tag: str) -> str:
    parsed = parse_tag(tag)
    if parsed is None:
        raise AnsibleFilterError(
            f"mastodon_version: expected a release tag like v4.5.3, got {tag!r}"
        )
    return f"{parsed[0]}.{parsed[1]}"


def version_tuple(text: str, field: str) -> tuple[int, ...]:
    """A dotted version ("3.2", "20.19", "7.0.15") as integers, for comparisons."""
    match = re.match(r"^v?(\d+(?:\.\d+)*)", str(text).strip())
    if not match:
        raise AnsibleFilterError(f"{field}: expected a dotted version number, got {text!r}")
    return tuple(int(part) for part in match[1].split("."))


def _series_key(series: str) -> tuple[int, int]:
    major, minor = series.split(".")
    return int(major), int(minor)


def release_facts(table: Any, source: str = "the release table") -> dict[str, Any]:
    """Validate the release table and return {series: facts}, series in release order."""
    if (
        not isinstance(table, dict)
        or not isinstance(table.get("series"), dict)
        or not table["series"]
    ):
        raise AnsibleFilterError(f"{source}: expected a mapping with a non-empty 'series' mapping")
    out: dict[str, Any] = {}
    for series, facts in table["series"].items():
        where = f"{source}: series.{series}"
        if not SERIES.match(str(series)):
            raise AnsibleFilterError(f'{where}: expected a series name like "4.5"')
        if not isinstance(facts, dict):
            raise AnsibleFilterError(f"{where}: expected a mapping")
        unknown = sorted(set(facts) - SERIES_KEYS)
        if unknown:
            raise AnsibleFilterError(
                f"{where}: unknown keys {', '.join(unknown)}"
                f" (known: {', '.join(sorted(SERIES_KEYS))})"
            )
        reviewed = facts.get("reviewed")
        if parse_tag(str(reviewed)) is None or series_of(str(reviewed)) != str(series):
            raise AnsibleFilterError(
                f"{where}.reviewed: expected a release tag of the {series} series, got {reviewed!r}"
            )
        try:
            until = (
                None
                if facts.get("supported_until") is None
                else dt.date.fromisoformat(str(facts["supported_until"]))
            )
        except ValueError:
            raise AnsibleFilterError(
                f"{where}.supported_until: expected a date YYYY-MM-DD,"
                f" got {facts.get('supported_until')!r}"
            ) from None
        minimums = facts.get("minimums")
        if not isinstance(minimums, dict) or sorted(minimums) != sorted(MINIMUM_KEYS):
            raise AnsibleFilterError(
                f"{where}.minimums: expected exactly the keys {', '.join(MINIMUM_KEYS)}"
            )
        for key in MINIMUM_KEYS:
            version_tuple(str(minimums[key]), f"{where}.minimums.{key}")
        memory = facts.get("build_memory_mb")
        if not isinstance(memory, int) or isinstance(memory, bool) or memory < 512:
            raise AnsibleFilterError(
                f"{where}.build_memory_mb: expected an integer of at least 512, got {memory!r}"
            )
        steps = facts.get("steps", []) or []
        if not isinstance(steps, list):
            raise AnsibleFilterError(f"{where}.steps: expected a list")
        for number, step in enumerate(steps):
            at = f"{where}.steps[{number}]"
            if not isinstance(step, dict) or set(step) != STEP_KEYS:
                raise AnsibleFilterError(
                    f"{at}: expected exactly the keys {', '.join(sorted(STEP_KEYS))}"
                )
            if step["phase"] not in STEP_PHASES:
                raise AnsibleFilterError(
                    f"{at}.phase: expected one of {', '.join(STEP_PHASES)}, got {step['phase']!r}"
                )
            if (
                not isinstance(step["argv"], list)
                or not step["argv"]
                or not all(isinstance(a, str) for a in step["argv"])
            ):
                raise AnsibleFilterError(f"{at}.argv: expected a non-empty list of strings")
        out[str(series)] = {
            "supported_until": until.isoformat() if until else None,
            "reviewed": str(reviewed),
            "minimums": {key: str(minimums[key]) for key in MINIMUM_KEYS},
            "build_memory_mb": memory,
            "steps": steps,
        }
    return dict(sorted(out.items(), key=lambda item: _series_key(item[0])))


def upgrade_plan(
    running: str, target: str, tags: list[str], table: Any, allow_hops: bool = True
) -> dict[str, Any]:
    """The releases to deploy, in order, to go from `running` to `target`.

    Upstream: patch releases may be skipped, but at least one release of every minor series
    must be deployed. So every series between the two gets one hop: the release the project
    reviewed in that series when the repository has it, else the newest tag of the series.
    Returns {"running", "target", "hops", "series"}; hops is [] when running == target.
    Raises with the versions needed when the target is not in the repository, is older than
    the running release, a series has no reviewed facts, or hops are needed but not allowed.
    """
    # The table as read from its file, or as mastodon_release_facts returned it.
    facts = release_facts(table) if isinstance(table, dict) and "series" in table else table
    have = {tag for tag in (str(t).strip() for t in tags) if parse_tag(tag)}
    target_v = parse_tag(target)
    if target_v is None:
        raise AnsibleFilterError(
            f"mastodon_version: expected a release tag like v4.5.3, got {target!r}"
        )
    if target not in have:
        newest = sorted((t for t in have if series_of(t) == series_of(target)), key=tag_key)
        hint = f" (the {series_of(target)} series there ends at {newest[-1]})" if newest else ""
        raise AnsibleFilterError(
            f"mastodon_version: the tag {target} is not in the source repository{hint}"
        )
    running_v = parse_tag(running)
    if running_v is None:
        raise AnsibleFilterError(
            f"the running release: expected a release tag like v4.5.3, got {running!r}"
        )
    plan: dict[str, Any] = {"running": running, "target": target, "hops": [], "series": []}
    if target_v == running_v:
        return plan
    if target_v < running_v:
        raise AnsibleFilterError(
            f"mastodon_version: {target} is older than the running {running}; Mastodon does not "
            "support downgrades (restore the backup taken before the upgrade instead)"
        )
    first, last = _series_key(series_of(running)), _series_key(series_of(target))
    between = sorted(
        {series_of(t) for t in have if first < _series_key(series_of(t)) < last}, key=_series_key
    )
    needed = [*between, series_of(target)] if last != first else [series_of(target)]
    unknown = [s for s in needed if s not in facts]
    if unknown:
        raise AnsibleFilterError(
            f"mastodon_version: no release facts for the series {', '.join(unknown)} "
            "(minimum Ruby, Node.js, PostgreSQL, Redis): review its release notes and add it to "
            "the role's files/releases.yml first"
        )
    hops = []
    for series in between:
        reviewed = facts[series]["reviewed"]
        in_series = sorted((t for t in have if series_of(t) == series), key=tag_key)
        hops.append(reviewed if reviewed in have else in_series[-1])
    if hops and not allow_hops:
        raise AnsibleFilterError(
            f"mastodon_version: {running} -> {target} skips the series {', '.join(between)}; "
            "Mastodon needs at least one release of every minor series: deploy "
            f"{' then '.join([*hops, target])}"
            " (or allow the planned hops with mastodon_upgrade_hops=true)"
        )
    plan["hops"] = [*hops, target]
    plan["series"] = needed
    return plan


def below_minimums(have: dict[str, Any], series: list[str], facts: dict[str, Any]) -> list[str]:
    """What the server runs that is older than a series on the way needs, one line each.
    `have` maps postgresql/redis/nodejs/ruby to a version; an empty one is not checked (Ruby
    with rbenv: each release brings its own)."""
    out: list[str] = []
    for name in series:
        needs = facts[name]["minimums"]
        for key in MINIMUM_KEYS:
            found = str(have.get(key) or "").strip()
            if not found:
                continue
            if version_tuple(found, key) < version_tuple(
                needs[key], f"series.{name}.minimums.{key}"
            ):
                line = f"{key} {found} is below {needs[key]}, which Mastodon {name} needs"
                if line not in out:
                    out.append(line)
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "mastodon_release_facts": release_facts,
            "mastodon_upgrade_plan": upgrade_plan,
            "mastodon_tag_series": series_of,
            "mastodon_below_minimums": below_minimums,
        }
