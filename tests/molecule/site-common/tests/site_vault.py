"""The example institution's vault, for the site tests that compare what was deployed with it."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
EXAMPLE = REPO / "inventories" / "example"


@functools.cache
def vault() -> dict[str, Any]:
    """The example institution's vault, decrypted once with its test-only password."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    password = (REPO / "examples" / "example-university.vault-pass").read_bytes().strip()
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    values: dict[str, Any] = yaml.safe_load(
        lib.decrypt((EXAMPLE / "group_vars" / "all" / "vault.yml").read_bytes())
    )
    return values


def vault_secret(name: str) -> str:
    """One vault value (never put it in an assertion message)."""
    return str(vault()[name])
