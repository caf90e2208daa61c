"""Reading the roles' meta/argument_specs.yml, shared by the unit tests (tests/unit is on
sys.path, so tests import it by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"


def roles_with_specs() -> list[str]:
    """Names of the roles that declare argument specs, sorted."""
    return sorted(p.parent.parent.name for p in ROLES_DIR.glob("*/meta/argument_specs.yml"))


def role_options(role: str) -> dict[str, Any]:
    """The options of the role's `main` entry point."""
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    specs = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(specs["argument_specs"]["main"]["options"])
