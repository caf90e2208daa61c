"""Secrets: generated once with a cryptographic RNG, kept on re-runs, stored with ansible-vault."""

from __future__ import annotations

import base64
import os
import secrets as _rng
import string
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from instance_cli.errors import InstanceCliError, VaultError

ALNUM = string.ascii_letters + string.digits

# Every secret the roles need, with its generator. The two answered secrets are listed in
# ANSWERED (empty string when not used).
GENERATED = (
    "vault_mastodon_secret_key_base",
    "vault_mastodon_vapid_private_key",
    "vault_mastodon_vapid_public_key",
    "vault_mastodon_active_record_encryption_primary_key",
    "vault_mastodon_active_record_encryption_deterministic_key",
    "vault_mastodon_active_record_encryption_key_derivation_salt",
    "vault_postgresql_mastodon_password",
    "vault_redis_password",
    "vault_backup_restic_password",
    "vault_mastodon_owner_password",
    "vault_analytics_secret",
)
ANSWERED = {
    "vault_mastodon_smtp_password": "smtp.password",
    "vault_mastodon_oidc_client_secret": "sso.oidc.client_secret",
}
ALL_KEYS = (*GENERATED, *ANSWERED)


def random_alnum(length: int) -> str:
    return "".join(_rng.choice(ALNUM) for _ in range(length))


def vapid_keypair() -> tuple[str, str]:
    """(private, public) the way Mastodon's web-push library stores them: urlsafe base64 of
    the 32-byte private scalar and of the 65-byte uncompressed public point."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(scalar).decode(), base64.urlsafe_b64encode(point).decode()


def generate() -> dict[str, str]:
    private, public = vapid_keypair()
    return {
        "vault_mastodon_secret_key_base": _rng.token_hex(64),
        "vault_mastodon_vapid_private_key": private,
        "vault_mastodon_vapid_public_key": public,
        "vault_mastodon_active_record_encryption_primary_key": random_alnum(32),
        "vault_mastodon_active_record_encryption_deterministic_key": random_alnum(32),
        "vault_mastodon_active_record_encryption_key_derivation_salt": random_alnum(32),
        "vault_postgresql_mastodon_password": random_alnum(32),
        "vault_redis_password": random_alnum(32),
        "vault_backup_restic_password": random_alnum(40),
        "vault_mastodon_owner_password": random_alnum(24),
        "vault_analytics_secret": random_alnum(40),
    }


def merge(
    existing: dict[str, Any] | None, answered: dict[str, str | None]
) -> tuple[dict[str, str], list[str]]:
    """Final secrets: existing values are kept, missing ones generated. Answered secrets
    (SMTP password, OIDC client secret) take the new answer when one was given, else the
    existing value, else "". Returns (secrets, names of newly generated secrets)."""
    existing = existing or {}
    fresh = generate()
    out: dict[str, str] = {}
    created: list[str] = []
    for key in GENERATED:
        old = existing.get(key)
        if isinstance(old, str) and old:
            out[key] = old
        else:
            out[key] = fresh[key]
            created.append(key)
    vapid = ("vault_mastodon_vapid_private_key", "vault_mastodon_vapid_public_key")
    if existing and (vapid[0] in created) != (vapid[1] in created):
        # never pair an old private key with a new public key, or the reverse
        raise VaultError("the existing vault holds only one half of the VAPID key pair")
    for key, answer_name in ANSWERED.items():
        given = answered.get(answer_name)
        old = existing.get(key)
        out[key] = given if given is not None else (old if isinstance(old, str) else "")
    return out, created


# --- ansible-vault -----------------------------------------------------------------------


def _vaultlib(password: bytes) -> Any:
    # slow import: only when a vault is actually read or written
    from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

    return VaultLib([("default", VaultSecret(password))])


def encrypt(values: dict[str, str], password: bytes) -> bytes:
    plain = "---\n" + yaml.safe_dump(values, sort_keys=False, default_flow_style=False, width=200)
    encrypted: bytes = _vaultlib(password).encrypt(plain.encode())
    return encrypted


def decrypt(data: bytes, password: bytes, source: str) -> dict[str, Any]:
    from ansible.errors import AnsibleError  # type: ignore[import-untyped]

    try:
        plain = _vaultlib(password).decrypt(data)
    except AnsibleError:
        raise VaultError(
            f"{source}: cannot decrypt with the given vault password (wrong password file?)"
        ) from None
    try:
        loaded = yaml.safe_load(plain)
    except yaml.YAMLError:
        raise VaultError(f"{source}: decrypted, but the content is not YAML") from None
    if not isinstance(loaded, dict):
        raise VaultError(f"{source}: decrypted, but the content is not a mapping")
    return loaded


def opens(data: bytes, password: bytes) -> bool:
    """Whether the password decrypts this vault (the content is not looked at)."""
    from ansible.errors import AnsibleError

    try:
        _vaultlib(password).decrypt(data)
    except AnsibleError:
        return False
    return True


# --- vault password file -----------------------------------------------------------------


def config_dir() -> Path:
    env = os.environ.get("INSTANCE_CLI_CONFIG_DIR")
    if env:
        return Path(env)
    return Path.home() / ".config" / "instance-cli"


def password_file_path(option: str | None, slug: str) -> tuple[Path, str]:
    """Where the vault password lives, and why: option > ANSIBLE_VAULT_PASSWORD_FILE > default."""
    if option:
        return Path(option).expanduser(), "--vault-password-file"
    env = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if env:
        return Path(env).expanduser(), "ANSIBLE_VAULT_PASSWORD_FILE"
    return config_dir() / "vault-passwords" / f"{slug}.txt", "default location"


def refuse_inside(path: Path, directory: Path) -> None:
    """The vault password must never live inside the inventories directory."""
    p = path.expanduser().resolve()
    d = directory.expanduser().resolve()
    if p == d or p.is_relative_to(d):
        raise InstanceCliError(
            f"vault password file {path} is inside {directory}; keep it outside the inventories "
            "(e.g. the default ~/.config/instance-cli/vault-passwords/<slug>.txt)"
        )


def read_password(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise VaultError(f"vault password file {path} does not exist") from None
    except OSError as exc:
        raise VaultError(f"cannot read vault password file {path}: {exc.strerror}") from None
    if not data:
        raise VaultError(f"vault password file {path} is empty")
    return data


def new_password() -> bytes:
    return _rng.token_urlsafe(36).encode()


def create_password_file(path: Path, password: bytes) -> None:
    """Create the password file (mode 0600, parent 0700); never overwrite one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise VaultError(
            f"vault password file {path} appeared while writing; not replaced"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(password + b"\n")
