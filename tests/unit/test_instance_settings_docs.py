"""The instance_settings README's variable table is generated from meta/argument_specs.yml,
and defaults/main.yml declares exactly the variables argument_specs documents."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles/instance_settings"
BEGIN = "<!-- BEGIN VARIABLES"
END = "<!-- END VARIABLES -->"
PIPE = " \\| "


def render_table() -> str:
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name, spec in options.items():
        default = spec.get("default", "(see defaults/main.yml)")
        shown = "`" + yaml.safe_dump(default, default_flow_style=True).strip()
        shown = shown.removesuffix("...").strip() + "`"
        if "choices" in spec:
            spec_type = spec["type"] + " (" + PIPE.join(spec["choices"]) + ")"
        else:
            spec_type = spec["type"]
        description = spec["description"].replace("|", "\\|")
        shown = shown.replace("|", "\\|")
        rows.append(f"| `{name}` | {spec_type} | {shown} | {description} |")
    return "\n".join(rows)


def readme_table() -> str:
    text = (ROLE / "README.md").read_text()
    start = text.index("\n", text.index(BEGIN)) + 1
    return text[start : text.index(END)].strip()


def test_readme_variable_table_matches_argument_specs() -> None:
    assert readme_table() == render_table(), (
        "README table is stale: run python tests/unit/test_instance_settings_docs.py --write"
    )


def test_defaults_and_argument_specs_declare_the_same_variables() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            continue
        assert options[name].get("default") == value, name


def test_every_documented_variable_has_the_role_prefix() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert all(re.match(r"^instance_settings_[a-z0-9_]+$", name) for name in defaults)


if __name__ == "__main__" and "--write" in sys.argv:
    readme = ROLE / "README.md"
    text = readme.read_text()
    head = text[: text.index("\n", text.index(BEGIN)) + 1]
    tail = text[text.index(END) :]
    readme.write_text(head + render_table() + "\n" + tail)
