"""Helpers shared by the instance-cli tests (imported by name; tests/unit is on sys.path)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

from instance_cli import cooperative

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ANSWERS = REPO / "examples" / "answers" / "example-university.yml"
EXAMPLE_PASS = REPO / "examples" / "example-university.vault-pass"
EXAMPLE_INVENTORY = REPO / "inventories" / "example"

COOPERATIVE = REPO / "cooperative" / "cooperative.yml"

# The example's answers as its inventory is made from them: its own over the cooperative's
# baseline (it is a member).
_EXAMPLE_RAW: dict[str, Any] = cooperative.member_answers(
    cooperative.load(COOPERATIVE), yaml.safe_load(EXAMPLE_ANSWERS.read_text(encoding="utf-8"))
)


def example_raw() -> dict[str, Any]:
    """A fresh deep copy of the example's answers document."""
    return copy.deepcopy(_EXAMPLE_RAW)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def trusted(value: Any) -> Any:
    """A value for Ansible's templar with every string marked as a trusted template (the
    inventory's own expressions), lists and dicts walked."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    return value


def load_module(name: str, path: Path) -> Any:
    """A Python file that is not part of a package (a script, a role's plugin or tool), imported
    by path and registered as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
