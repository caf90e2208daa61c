"""`instance-cli new`: secrets + render + atomic write. Everything or nothing."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from instance_cli import secrets, vaultpass
from instance_cli.answers import SECRET_ENV, Answers
from instance_cli.errors import ExistsError, InstanceCliError, VaultError
from instance_cli.plan import Plan, make_plan
from instance_cli.render import FILES, VAULT_PATH, render_text

if TYPE_CHECKING:
    from instance_cli.cooperative import Membership


@dataclass
class Result:
    target: Path
    plan: Plan
    password_file: Path
    password_source: str
    password_created: bool
    generated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    preview: str = ""  # dry-run: what would be written (never a secret)


def _is_existing(target: Path) -> bool:
    return target.is_dir() and any(target.iterdir())


def _existing_secrets(target: Path, password_file: Path) -> tuple[dict[str, Any] | None, bytes]:
    """Decrypt the existing vault (to keep every secret) or fail without writing."""
    vault = target / VAULT_PATH
    if not vault.exists():
        return None, b""
    if not password_file.exists():
        raise VaultError(
            f"{vault} exists but the vault password file {password_file} does not; cannot keep "
            "the existing secrets. Point --vault-password-file or ANSIBLE_VAULT_PASSWORD_FILE at "
            "the institution's password file. Nothing was written."
        )
    password = secrets.read_password(password_file)
    return secrets.decrypt(vault.read_bytes(), password, str(vault)), password


def check_rendered(texts: dict[str, str], plan: Plan) -> None:
    """Self-check of the rendered output before anything touches the disk."""
    for path, text in texts.items():
        if path.endswith(".yml"):
            if not text.startswith("---\n"):
                raise InstanceCliError(f"internal: rendered {path} lacks the YAML document start")
            try:
                yaml.safe_load(text)
            except yaml.YAMLError as exc:  # pragma: no cover - would be a template bug
                raise InstanceCliError(
                    f"internal: rendered {path} is not valid YAML: {exc}"
                ) from None
    s = plan.sizing
    if s.connections_needed >= s.postgresql_max_connections:  # pragma: no cover - table bug
        raise InstanceCliError(
            f"internal: tier {s.tier} needs {s.connections_needed} database connections but "
            f"allows {s.postgresql_max_connections}"
        )


def _preview(target: Path, texts: dict[str, str], exists: bool, n_secrets: int) -> str:
    lines = [f"Dry run: would write {target}/ (nothing written):"]
    for rel in FILES:
        lines.append(f"  {rel}")
    lines.append("")
    for rel in FILES:
        if rel == VAULT_PATH:
            lines.append(f"--- {rel}: ansible-vault encrypted, {n_secrets} secrets (not shown)")
            continue
        new = texts[rel]
        old_path = target / rel
        if exists and old_path.exists():
            old = old_path.read_text(encoding="utf-8", errors="replace")
            diff = list(
                difflib.unified_diff(
                    old.splitlines(),
                    new.splitlines(),
                    f"{rel} (current)",
                    f"{rel} (new)",
                    lineterm="",
                )
            )
            lines.append(f"--- {rel}: " + ("unchanged" if not diff else "changes:"))
            lines += diff
        else:
            lines.append(f"--- {rel}:")
            lines += new.splitlines()
        lines.append("")
    return "\n".join(lines)


def _write_tree(tmp: Path, texts: dict[str, str], vault: bytes, old: Path | None) -> None:
    for rel, text in texts.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    vault_path = tmp / VAULT_PATH
    vault_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(vault_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(vault)
    if old is not None:
        # Keep what others put in the institution's directory (state/last-deploy.yml written by
        # playbooks, community/domain-blocks.csv): only our own files are replaced.
        for src in sorted(old.rglob("*")):
            rel = src.relative_to(old).as_posix()
            dst = tmp / rel
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            elif rel not in FILES and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


def preflight(
    answers: Answers, output_dir: Path, *, force: bool, vault_password_file: str | None
) -> tuple[Plan, Path, bool, Path, str]:
    """The checks that need no secrets: run before the interactive questionnaire asks for
    them, and again by new_institution(). Returns (plan, target, exists, password file and
    where it came from)."""
    plan = make_plan(answers)
    target = output_dir / plan.slug
    exists = _is_existing(target)
    if exists and not force:
        raise ExistsError(
            f"{target} already exists; use --force to regenerate it (secrets are kept)"
        )
    pw_path, pw_source = secrets.password_file_path(vault_password_file, plan.slug)
    secrets.refuse_inside(pw_path, output_dir)
    vaultpass.refuse_foreign(pw_path, pw_source, plan.slug, output_dir, target)
    return plan, target, exists, pw_path, pw_source


def new_institution(
    answers: Answers,
    output_dir: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    vault_password_file: str | None = None,
    secret_answers: dict[str, str | None] | None = None,
    member: Membership | None = None,
) -> Result:
    plan, target, exists, pw_path, pw_source = preflight(
        answers, output_dir, force=force, vault_password_file=vault_password_file
    )

    existing, password = _existing_secrets(target, pw_path) if exists else (None, b"")
    create_password = False
    if not password:
        if pw_path.exists():
            password = secrets.read_password(pw_path)
        else:
            password, create_password = secrets.new_password(), True

    values, generated = secrets.merge(existing, secret_answers or {})
    if answers.get("sso.mode") == "oidc" and not values["vault_mastodon_oidc_client_secret"]:
        raise InstanceCliError(
            "sso.oidc.client_secret: required when sso.mode is oidc; set "
            f"{SECRET_ENV['sso.oidc.client_secret']} (or answer the hidden prompt)"
        )
    kept = [k for k in secrets.ALL_KEYS if k not in generated and existing and k in existing]
    texts = render_text(answers, plan, member)
    check_rendered(texts, plan)
    result = Result(target, plan, pw_path, pw_source, create_password, generated, kept)

    if dry_run:
        result.preview = _preview(target, texts, exists, len(values))
        return result

    if existing == values:
        # Nothing changed: keep the old ciphertext byte for byte (no churn in git).
        vault = (target / VAULT_PATH).read_bytes()
    else:
        vault = secrets.encrypt(values, password)
    if secrets.decrypt(vault, password, VAULT_PATH) != values:  # pragma: no cover - paranoia
        raise InstanceCliError("internal: the vault does not decrypt to what was written")
    _commit(output_dir, target, texts, vault, exists, pw_path if create_password else None,
            password)  # fmt: skip
    return result


def _commit(
    output_dir: Path,
    target: Path,
    texts: dict[str, str],
    vault: bytes,
    exists: bool,
    new_password_file: Path | None,
    password: bytes,
) -> None:
    """Render into a temp dir next to the target, then rename into place; undo on any error."""
    made_output_dir = not output_dir.exists()
    tmp: Path | None = None
    old: Path | None = None
    password_written = False
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=output_dir))
        tmp.chmod(0o755)
        _write_tree(tmp, texts, vault, target if exists else None)
        if new_password_file is not None:
            secrets.create_password_file(new_password_file, password)
            password_written = True
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=output_dir))
            old.rmdir()
            target.rename(old)
        tmp.rename(target)
        tmp = None
        if old is not None:
            shutil.rmtree(old)
            old = None
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            old.rename(target)
        if password_written and new_password_file is not None:
            new_password_file.unlink(missing_ok=True)
        if made_output_dir:
            shutil.rmtree(output_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise InstanceCliError(
                f"cannot write {target}: {exc.strerror or exc}; nothing was written"
            ) from None
        raise
