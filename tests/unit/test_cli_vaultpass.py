"""Issue 11, item 1: one institution's vault password never encrypts another's secrets, and the
public test-only password of the example serves the example only."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_testlib import EXAMPLE_INVENTORY, EXAMPLE_PASS, REPO, example_raw, files_under

from instance_cli import secrets

Run = Callable[..., Any]
EXAMPLE_PASS_IN_REPO = "examples/example-university.vault-pass"
VAULT = "group_vars/all/vault.yml"


def acme_raw() -> dict[str, Any]:
    raw = example_raw()
    raw["institution"] = {"name": "Acme Institute", "short_name": "Acme", "slug": "acme"}
    raw["host"]["name"] = "acme-1"
    return raw


def new(run: Run, answers: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run("new", "--answers", str(answers), "--output-dir", str(out), *extra, env=env)


def snapshot(*dirs: Path) -> list[dict[str, bytes] | None]:
    return [files_under(d) if d.exists() else None for d in dirs]


def test_the_public_fingerprint_matches_the_committed_example_password() -> None:
    from instance_cli import vaultpass

    digest = hashlib.sha256(EXAMPLE_PASS.read_bytes().strip()).hexdigest()
    public = dict(vaultpass.PUBLIC_PASSWORDS)
    assert public == {digest: vaultpass.PublicPassword("example", EXAMPLE_PASS_IN_REPO)}
    assert (REPO / EXAMPLE_PASS_IN_REPO).read_bytes() == EXAMPLE_PASS.read_bytes()


@pytest.mark.parametrize("source", ["ANSIBLE_VAULT_PASSWORD_FILE", "--vault-password-file"])
def test_new_refuses_the_public_example_password_for_another_institution(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path, source: str
) -> None:
    out = tmp_path / "inventories"
    out.mkdir()
    before = snapshot(out, isolated_env)
    if source == "--vault-password-file":
        result = new(run, write_answers(acme_raw()), out, source, str(EXAMPLE_PASS))
    else:
        result = new(run, write_answers(acme_raw()), out, env={source: str(EXAMPLE_PASS)})
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert f"vault password file {EXAMPLE_PASS} (from {source})" in err
    assert "public, test-only password of the example institution" in err
    assert "must not encrypt acme's secrets" in err
    default = isolated_env / "vault-passwords" / "acme.txt"
    if source == "ANSIBLE_VAULT_PASSWORD_FILE":
        assert f"Unset {source} so that instance-cli new creates {default}" in err
    else:
        assert f"leave the option out so that instance-cli new creates {default}" in err
    assert "name acme's own password file with --vault-password-file" in err
    assert "Nothing was written." in err
    assert "using" not in result.stdout
    assert snapshot(out, isolated_env) == before
    # a dry run is refused the same way
    result = new(run, write_answers(acme_raw()), out, "--dry-run",
                 env={"ANSIBLE_VAULT_PASSWORD_FILE": str(EXAMPLE_PASS)})  # fmt: skip
    assert result.exit_code == 1
    assert "public, test-only" in result.stderr


def test_the_example_password_still_serves_the_example(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(EXAMPLE_PASS)}
    result = new(run, write_answers(example_raw()), out, env=env)
    assert result.exit_code == 0, result.output
    assert f"using {EXAMPLE_PASS}" in result.output


def test_new_refuses_another_institutions_password_file(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    assert new(run, write_answers(example_raw()), out).exit_code == 0
    example_pw = isolated_env / "vault-passwords" / "example.txt"
    # (a) a copy elsewhere still opens the example's vault
    copy = tmp_path / "somewhere" / "pass.txt"
    copy.parent.mkdir()
    shutil.copy(example_pw, copy)
    before = snapshot(out, isolated_env)
    result = new(run, write_answers(acme_raw(), "acme.yml"), out, "--vault-password-file",
                 str(copy))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"vault password file {copy} (from --vault-password-file)" in result.stderr
    assert f"it opens the vault of institution example ({out / 'example' / VAULT})" in (
        result.stderr
    )
    assert snapshot(out, isolated_env) == before
    # (b) the CLI's own password file of another institution, even one without an inventory
    for name in ("example.txt", "other.txt"):
        pw = isolated_env / "vault-passwords" / name
        env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(pw)}
        result = new(run, write_answers(acme_raw(), "acme.yml"), out, env=env)
        assert result.exit_code == 1, result.output
        assert f"it is institution {name[:-4]}'s password file" in result.stderr
        assert "Unset ANSIBLE_VAULT_PASSWORD_FILE" in result.stderr
        assert snapshot(out, isolated_env) == before
    # without the variable, acme gets its own new password file
    result = new(run, write_answers(acme_raw(), "acme.yml"), out)
    assert result.exit_code == 0, result.output
    assert f"created {isolated_env / 'vault-passwords' / 'acme.txt'}" in result.output


def test_validate_without_a_password_says_which_file_the_example_uses(
    run: Run, tmp_path: Path
) -> None:
    inventories = tmp_path / "inventories"
    shutil.copytree(EXAMPLE_INVENTORY, inventories / "example",
                    ignore=shutil.ignore_patterns("state"))  # fmt: skip
    result = run("validate", "example", "--inventories", str(inventories))
    assert result.exit_code == 1
    assert "no vault password file given" in result.stderr
    assert (
        "the example institution uses the public, test-only examples/example-university.vault-pass"
        in result.stderr
    )
    assert "instance-cli validate example --vault-password-file " in result.stderr


def test_validate_without_a_password_for_a_real_institution(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    assert new(run, write_answers(acme_raw()), out).exit_code == 0
    (isolated_env / "vault-passwords" / "acme.txt").unlink()
    result = run("validate", "acme", "--inventories", str(out))
    assert result.exit_code == 1
    assert "no vault password file given" in result.stderr
    assert "pass acme's own password file with --vault-password-file PATH" in result.stderr
    assert "examples/example-university.vault-pass" not in result.stderr


def test_validate_flags_an_institution_encrypted_with_the_public_password(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    """An institution created before the fix, its secrets under the public password."""
    out = tmp_path / "inventories"
    assert new(run, write_answers(acme_raw()), out).exit_code == 0
    vault = out / "acme" / VAULT
    own = isolated_env / "vault-passwords" / "acme.txt"
    values = secrets.decrypt(vault.read_bytes(), secrets.read_password(own), "vault")
    vault.write_bytes(secrets.encrypt(values, secrets.read_password(EXAMPLE_PASS)))
    result = run("validate", "acme", "--inventories", str(out),
                 "--vault-password-file", str(EXAMPLE_PASS))  # fmt: skip
    assert result.exit_code == 1
    assert "public, test-only password of the example institution" in result.stderr
    assert "ansible-vault rekey" in result.stderr
