"""The README variable table of every role is generated from meta/argument_specs.yml.

One test per role that has argument specs (drift fails it), plus tests that the generator
itself notices drift and missing markers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cli_testlib import load_module
from role_specs import REPO, role_options, roles_with_specs

ROLES = REPO / "roles"


role_docs = load_module("role_docs", REPO / "scripts" / "role_docs.py")
ROLES_WITH_SPECS = roles_with_specs()


def test_there_are_roles_to_check():
    assert "mastodon" in ROLES_WITH_SPECS


@pytest.mark.parametrize("role", ROLES_WITH_SPECS)
def test_readme_variable_table_matches_argument_specs(role):
    rc = role_docs.main(["--check", "--roles-dir", str(ROLES), role])
    assert rc == 0, (
        f"roles/{role}/README.md drifted from its argument specs: run scripts/role_docs.py {role}"
    )


@pytest.mark.parametrize("role", ROLES_WITH_SPECS)
def test_every_option_has_type_and_description(role):
    for name, option in role_options(role).items():
        assert option.get("type"), f"{role}: {name} has no type"
        assert option.get("description"), f"{role}: {name} has no description"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES_WITH_SPECS)
def test_defaults_and_argument_specs_declare_the_same_variables(role):
    defaults = _yaml(ROLES / role / "defaults" / "main.yml")
    options = role_options(role)
    assert set(defaults) - set(options) == set(), f"{role}: in defaults, not in argument_specs"
    assert {n for n, o in options.items() if "default" in o} - set(defaults) == set(), (
        f"{role}: a default in argument_specs that defaults/main.yml lacks"
    )
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            continue  # derived from another variable; argument_specs cannot express it
        if "default" in options[name]:
            assert options[name]["default"] == value, f"{role}: {name} default differs"


@pytest.mark.parametrize("role", ROLES_WITH_SPECS)
def test_every_variable_carries_the_role_prefix(role):
    options = role_options(role)
    assert [n for n in options if not n.startswith(role + "_")] == []


@pytest.fixture
def toy_role(tmp_path: Path) -> Path:
    role = tmp_path / "roles" / "toy"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      toy_mode:\n        type: str\n        default: fast\n        choices: [fast, slow]\n"
        "        description: How fast.\n"
        "      toy_ports:\n        type: list\n        elements: int\n        default: [1, 2]\n"
        "        description: Ports | numbers.\n"
    )
    (role / "README.md").write_text(
        "# toy\n\n<!-- BEGIN VARIABLES -->\nold\n<!-- END VARIABLES -->\n\nTail.\n"
    )
    return role


def test_generator_writes_table_between_markers(toy_role: Path):
    roles_dir = str(toy_role.parent)
    assert role_docs.main(["--check", "--roles-dir", roles_dir]) == 1
    assert role_docs.main(["--roles-dir", roles_dir]) == 0
    text = (toy_role / "README.md").read_text()
    assert '| `toy_mode` | str | `"fast"` | How fast. Choices: `fast`, `slow`. |' in text
    assert "| `toy_ports` | list of int | `[1, 2]` | Ports \\| numbers. |" in text
    assert text.endswith("<!-- END VARIABLES -->\n\nTail.\n")
    assert role_docs.main(["--check", "--roles-dir", roles_dir]) == 0


def test_check_fails_when_specs_change(toy_role: Path):
    roles_dir = str(toy_role.parent)
    role_docs.main(["--roles-dir", roles_dir])
    specs = toy_role / "meta" / "argument_specs.yml"
    specs.write_text(specs.read_text().replace("How fast.", "How quick."))
    assert role_docs.main(["--check", "--roles-dir", roles_dir]) == 1


def test_missing_markers_is_an_error(toy_role: Path, tmp_path: Path):
    (toy_role / "README.md").write_text("# toy without markers\n")
    assert role_docs.main(["--check", "--roles-dir", str(toy_role.parent)]) == 2


def test_real_roles_are_not_modified_by_check(tmp_path: Path):
    copy = tmp_path / "roles"
    shutil.copytree(ROLES / "mastodon", copy / "mastodon")
    before = (copy / "mastodon" / "README.md").read_text()
    role_docs.main(["--check", "--roles-dir", str(copy), "mastodon"])
    assert (copy / "mastodon" / "README.md").read_text() == before
