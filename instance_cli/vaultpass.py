"""Which vault password file may serve which institution.

Each institution has its own password. A password file is refused for an institution when it
belongs to another one: it sits in the CLI's password directory under another slug, its password
opens another institution's vault in the same inventories directory, or it is a public password
(the example's, committed for tests and the demo) that serves only its own slug.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from instance_cli import secrets
from instance_cli.errors import VaultError
from instance_cli.render import VAULT_PATH

ENV = "ANSIBLE_VAULT_PASSWORD_FILE"
OPTION = "--vault-password-file"


@dataclass(frozen=True)
class PublicPassword:
    slug: str  # the one institution it may serve
    path: str  # where it is committed, relative to the repository root


# SHA-256 of the (stripped) password; a unit test checks it against the committed file.
PUBLIC_PASSWORDS: dict[str, PublicPassword] = {
    "6340ea9d54a7393c77f73d1c23ca98119526250c4922ec716c909c8aa047ca03": PublicPassword(
        "example", "examples/example-university.vault-pass"
    ),
}


def fingerprint(password: bytes) -> str:
    return hashlib.sha256(password.strip()).hexdigest()


def public_for(slug: str) -> PublicPassword | None:
    """The public test-only password this institution uses, if it is the example."""
    return next((p for p in PUBLIC_PASSWORDS.values() if p.slug == slug), None)


def default_path(slug: str) -> Path:
    return secrets.config_dir() / "vault-passwords" / f"{slug}.txt"


def _owner_by_name(path: Path, slug: str) -> str | None:
    """(b) the CLI's own password file of another institution: <config>/vault-passwords/X.txt"""
    directory = default_path(slug).parent
    try:
        same_dir = path.expanduser().resolve().parent == directory.expanduser().resolve()
    except OSError:  # pragma: no cover - unresolvable path
        return None
    if same_dir and path.suffix == ".txt" and path.stem != slug:
        return path.stem
    return None


def _owner_by_vault(password: bytes, inventories: Path, own: Path) -> Path | None:
    """(a) the vault of another institution that this password opens."""
    if not inventories.is_dir():
        return None
    own_resolved = own.resolve()
    for inv in sorted(p for p in inventories.iterdir() if p.is_dir()):
        vault = inv / VAULT_PATH
        if inv.name.startswith(".") or inv.resolve() == own_resolved or not vault.is_file():
            continue
        if secrets.opens(vault.read_bytes(), password):
            return vault
    return None


def _remedy(source: str, slug: str) -> str:
    default = default_path(slug)
    own = f"name {slug}'s own password file with {OPTION}"
    if source == ENV:
        return f"Unset {ENV} so that instance-cli new creates {default} for {slug}, or {own}."
    if source == OPTION:
        also = f" (and unset {ENV})" if os.environ.get(ENV) else ""
        return (
            f"Either {own}, or leave the option out so that instance-cli new creates {default}"
            f"{also}."
        )
    return (
        f"Move {default} away so that instance-cli new creates a new one, or {own}; re-key a "
        "vault already encrypted with it (ansible-vault rekey)."
    )


def foreign_reason(path: Path, slug: str, inventories: Path, own: Path) -> str | None:
    """Why the password file at `path` must not serve institution `slug`, or None."""
    other = _owner_by_name(path, slug)
    if other is not None:
        return f"it is institution {other}'s password file"
    if not path.is_file():
        return None
    password = secrets.read_password(path)
    public = PUBLIC_PASSWORDS.get(fingerprint(password))
    if public is not None and public.slug != slug:
        return (
            f"it holds the public, test-only password of the {public.slug} institution "
            f"({public.path}), readable by anyone in git"
        )
    vault = _owner_by_vault(password, inventories, own)
    if vault is not None:
        return f"it opens the vault of institution {vault.parent.parent.parent.name} ({vault})"
    return None


def refuse_foreign(path: Path, source: str, slug: str, inventories: Path, own: Path) -> None:
    """Raise, naming the source and what to do, when the file belongs to someone else."""
    reason = foreign_reason(path, slug, inventories, own)
    if reason is not None:
        raise VaultError(
            f"vault password file {path} (from {source}) must not encrypt {slug}'s secrets: "
            f"{reason}. Each institution has its own password. {_remedy(source, slug)} "
            "Nothing was written."
        )


def missing_hint(slug: str, inv: Path) -> str:
    """What `validate` says when no password file was given and the default one is absent."""
    public = public_for(slug)
    if public is None:
        return (
            f"no vault password file given and the default {default_path(slug)} does not "
            f"exist; pass {slug}'s own password file with {OPTION} PATH (or {ENV}=PATH)"
        )
    candidate = inv.resolve().parent.parent / public.path
    shown = public.path if Path(public.path).is_file() or not candidate.is_file() else candidate
    return (
        f"no vault password file given and the default {default_path(slug)} does not exist; "
        f"the {slug} institution uses the public, test-only {public.path}: "
        f"instance-cli validate {slug} {OPTION} {shown}"
    )
