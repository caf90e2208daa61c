#!/usr/bin/env python3
"""Generate (or check) the variable table of each role's README from meta/argument_specs.yml.

The table sits between the markers ``<!-- BEGIN VARIABLES -->`` and ``<!-- END VARIABLES -->``
in ``roles/<role>/README.md``. Usage::

    scripts/role_docs.py            # rewrite the tables of every role that has argument specs
    scripts/role_docs.py --check    # exit 1 and name the roles whose README drifted
    scripts/role_docs.py ROLE...    # only these roles
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN VARIABLES -->"
END = "<!-- END VARIABLES -->"


class DocsError(Exception):
    """A role's specs or README cannot be processed."""


def _type(option: dict[str, Any]) -> str:
    kind = str(option.get("type", "str"))
    if kind == "list" and "elements" in option:
        return f"list of {option['elements']}"
    return kind


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(option: dict[str, Any]) -> str:
    if "default" not in option:
        return "required" if option.get("required") else "—"
    return "`" + _cell(json.dumps(option["default"], ensure_ascii=False)) + "`"


def _description(option: dict[str, Any]) -> str:
    raw = option.get("description", "")
    text = " ".join(raw) if isinstance(raw, list) else str(raw)
    if option.get("choices"):
        text += " Choices: " + ", ".join(f"`{c}`" for c in option["choices"]) + "."
    return _cell(text)


def table(specs_path: Path) -> str:
    """The Markdown variable table for one role's argument specs (entry point `main`)."""
    data = yaml.safe_load(specs_path.read_text(encoding="utf-8")) or {}
    try:
        options = data["argument_specs"]["main"]["options"] or {}
    except (KeyError, TypeError) as exc:
        raise DocsError(f"{specs_path}: no argument_specs.main.options") from exc
    lines = ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in options.items():
        if not isinstance(option, dict):
            raise DocsError(f"{specs_path}: option {name} is not a mapping")
        lines.append(
            f"| `{name}` | {_type(option)} | {_default(option)} | {_description(option)} |"
        )
    return "\n".join(lines)


def render(readme_text: str, new_table: str, readme_path: Path) -> str:
    """README text with the table between the markers replaced."""
    if BEGIN not in readme_text or END not in readme_text:
        raise DocsError(f"{readme_path}: add the markers {BEGIN} and {END} where the table goes")
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{new_table}\n{END}{tail}"


def roles_with_specs(roles_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in roles_dir.glob("*/meta/argument_specs.yml"))


def process(role_dir: Path, check: bool) -> bool:
    """Update (or check) one role. Returns True when the README is (now) in sync."""
    readme = role_dir / "README.md"
    if not readme.exists():
        raise DocsError(f"{readme}: missing (roles with argument specs need a README)")
    current = readme.read_text(encoding="utf-8")
    wanted = render(current, table(role_dir / "meta" / "argument_specs.yml"), readme)
    if current == wanted:
        return True
    if check:
        return False
    readme.write_text(wanted, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift, change nothing")
    parser.add_argument("--roles-dir", type=Path, default=REPO / "roles")
    parser.add_argument("roles", nargs="*", help="role names (default: all with argument specs)")
    args = parser.parse_args(argv)
    roles = (
        [args.roles_dir / name for name in args.roles]
        if args.roles
        else roles_with_specs(args.roles_dir)
    )
    drifted = []
    try:
        for role in roles:
            if not process(role, args.check):
                drifted.append(role.name)
    except DocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if drifted:
        print(
            "README variable table out of date for: "
            + ", ".join(drifted)
            + " (run scripts/role_docs.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
