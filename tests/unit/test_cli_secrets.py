"""Secrets: formats Mastodon expects, vault round trip, keeping secrets, password files."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from instance_cli import secrets
from instance_cli.errors import InstanceCliError, VaultError


def test_vapid_pair_is_a_valid_p256_pair() -> None:
    values = secrets.generate()
    private_raw = base64.urlsafe_b64decode(values["vault_mastodon_vapid_private_key"])
    public_raw = base64.urlsafe_b64decode(values["vault_mastodon_vapid_public_key"])
    assert len(private_raw) == 32
    assert len(public_raw) == 65 and public_raw[0] == 4  # uncompressed point
    private = ec.derive_private_key(int.from_bytes(private_raw, "big"), ec.SECP256R1())
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw)
    derived = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert derived == public_raw
    assert public.public_numbers() == private.public_key().public_numbers()


def test_lengths_and_alphabets_match_what_mastodon_generates() -> None:
    values = secrets.generate()
    assert re.fullmatch(r"[0-9a-f]{128}", values["vault_mastodon_secret_key_base"])
    for suffix in ("primary_key", "deterministic_key", "key_derivation_salt"):
        value = values[f"vault_mastodon_active_record_encryption_{suffix}"]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", value), suffix
    assert re.fullmatch(r"[A-Za-z0-9]{32}", values["vault_postgresql_mastodon_password"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", values["vault_redis_password"])
    assert re.fullmatch(r"[A-Za-z0-9]{40}", values["vault_backup_restic_password"])
    assert re.fullmatch(r"[A-Za-z0-9]{24}", values["vault_mastodon_owner_password"])
    assert set(values) == set(secrets.GENERATED)


def test_secrets_differ_between_runs() -> None:
    a, b = secrets.generate(), secrets.generate()
    assert all(a[k] != b[k] for k in secrets.GENERATED)


def test_vault_round_trip_and_wrong_password() -> None:
    values = {"vault_x": "value-1"}
    blob = secrets.encrypt(values, b"pw-one")
    assert blob.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    assert b"value-1" not in blob
    assert secrets.decrypt(blob, b"pw-one", "v") == values
    with pytest.raises(VaultError, match="cannot decrypt"):
        secrets.decrypt(blob, b"pw-two", "v")


def test_merge_keeps_existing_and_fills_missing() -> None:
    existing = secrets.generate()
    existing["vault_mastodon_smtp_password"] = "old-smtp"
    del existing["vault_redis_password"]
    merged, created = secrets.merge(existing, {"smtp.password": None})
    assert created == ["vault_redis_password"]
    for key in secrets.GENERATED:
        if key != "vault_redis_password":
            assert merged[key] == existing[key]
    assert merged["vault_mastodon_smtp_password"] == "old-smtp"
    assert merged["vault_mastodon_oidc_client_secret"] == ""
    merged2, _ = secrets.merge(existing, {"smtp.password": "new-smtp"})
    assert merged2["vault_mastodon_smtp_password"] == "new-smtp"


def test_merge_refuses_half_a_vapid_pair() -> None:
    existing = secrets.generate()
    del existing["vault_mastodon_vapid_public_key"]
    with pytest.raises(VaultError, match="VAPID"):
        secrets.merge(existing, {})


def test_password_file_precedence(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    assert secrets.password_file_path(None, "abc") == (
        isolated_env / "vault-passwords" / "abc.txt",
        "default location",
    )
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "/tmp/from-env")
    assert secrets.password_file_path(None, "abc") == (
        Path("/tmp/from-env"),
        "ANSIBLE_VAULT_PASSWORD_FILE",
    )
    assert secrets.password_file_path("/tmp/opt", "abc")[0] == Path("/tmp/opt")


def test_password_file_is_created_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "pw.txt"
    secrets.create_password_file(path, b"abc")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secrets.read_password(path) == b"abc"
    with pytest.raises(VaultError):
        secrets.create_password_file(path, b"other")
    assert secrets.read_password(path) == b"abc"


def test_refuse_password_file_inside_inventories(tmp_path: Path) -> None:
    inv = tmp_path / "inventories"
    with pytest.raises(InstanceCliError, match="inside"):
        secrets.refuse_inside(inv / "x" / "pw", inv)
    secrets.refuse_inside(tmp_path / "pw", inv)


def test_read_password_errors(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="does not exist"):
        secrets.read_password(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(VaultError, match="is empty"):
        secrets.read_password(empty)
