"""`instance-cli new`: writing, atomicity, --force keeping secrets, --dry-run, interactive mode."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import REPO, example_raw, files_under
from role_specs import role_options

from instance_cli import secrets, write
from instance_cli.render import FILES

Run = Callable[..., Any]


def new(run: Run, answers: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run("new", "--answers", str(answers), "--output-dir", str(out), *extra, env=env)


def vault_of(inv: Path, password_file: Path) -> dict[str, Any]:
    blob = (inv / "group_vars/all/vault.yml").read_bytes()
    return secrets.decrypt(blob, secrets.read_password(password_file), "vault")


def test_new_writes_every_file_and_the_next_steps(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    result = new(run, write_answers(example_raw()), out)
    assert result.exit_code == 0, result.output
    inv = out / "example"
    assert sorted(files_under(inv)) == sorted(FILES)
    password_file = isolated_env / "vault-passwords" / "example.txt"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((inv / "group_vars/all/vault.yml").stat().st_mode) == 0o600
    assert f"created {password_file}" in result.output
    assert (
        f"ansible-playbook -i {inv} --vault-password-file {password_file} playbooks/site.yml\n"
        in result.output
    )
    assert f"instance-cli validate {inv}\n" in result.output  # finds the default file itself
    assert "export ANSIBLE_VAULT_PASSWORD_FILE" not in result.output
    assert set(vault_of(inv, password_file)) == set(secrets.ALL_KEYS)
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    children = hosts["all"]["children"]
    assert set(children) == {"mastodon", "postgresql", "redis", "backup"}
    assert set(children["mastodon"]["children"]) == {
        "mastodon_web",
        "mastodon_sidekiq",
        "mastodon_streaming",
    }
    # nothing else was left next to the inventory (no temp dirs)
    assert [p.name for p in out.iterdir()] == ["example"]


def test_no_secret_in_plain_text_in_files_or_output(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    raw = example_raw()
    raw["sso"] = {
        "mode": "oidc",
        "oidc": {
            "display_name": "Uni login",
            "issuer": "https://login.example-university.edu",
            "client_id": "mastodon",
        },
    }
    env = {
        "INSTANCE_CLI_SMTP_PASSWORD": "smtp-Secret-Value-123",
        "INSTANCE_CLI_OIDC_CLIENT_SECRET": "oidc-Secret-Value-456",
    }
    out = tmp_path / "inventories"
    outputs = []
    for extra in ((), ("--force",), ("--force", "--dry-run")):
        result = new(run, write_answers(raw), out, *extra, env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    inv = out / "example"
    password_file = isolated_env / "vault-passwords" / "example.txt"
    for args in (("validate", str(inv), "--vault-password-file", str(password_file)),
                 ("list", "--inventories", str(out))):  # fmt: skip
        result = run(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    values = vault_of(inv, password_file)
    assert values["vault_mastodon_smtp_password"] == env["INSTANCE_CLI_SMTP_PASSWORD"]
    assert values["vault_mastodon_oidc_client_secret"] == env["INSTANCE_CLI_OIDC_CLIENT_SECRET"]
    assert all(values[k] for k in secrets.ALL_KEYS)
    everything = b"\n".join(files_under(inv).values()) + "\n".join(outputs).encode()
    for key, value in values.items():
        assert value.encode() not in everything, f"{key} leaked"
        # nor a recognisable part of it
        assert value[:16].encode() not in everything, f"{key} leaked (prefix)"
    password = password_file.read_bytes().strip()
    assert password not in everything


def test_existing_institution_needs_force(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    answers = write_answers(example_raw())
    assert new(run, answers, out).exit_code == 0
    before = files_under(out)
    raw = example_raw()
    raw["users"]["expected"] = 5000
    result = new(run, write_answers(raw, "changed.yml"), out)
    assert result.exit_code == 1
    assert "already exists; use --force" in result.stderr
    assert files_under(out) == before


def test_force_keeps_every_secret_and_applies_new_answers(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    assert new(run, write_answers(example_raw()), out).exit_code == 0
    inv = out / "example"
    password_file = isolated_env / "vault-passwords" / "example.txt"
    first = vault_of(inv, password_file)
    vault_bytes = (inv / "group_vars/all/vault.yml").read_bytes()
    (inv / "state").mkdir()
    (inv / "state" / "last-deploy.yml").write_text("---\nmastodon_version: v4.5.1\nat: x\n")
    raw = example_raw()
    raw["users"]["expected"] = 5000
    result = new(run, write_answers(raw, "changed.yml"), out, "--force")
    assert result.exit_code == 0, result.output
    assert "0 secrets generated" in result.output
    assert vault_of(inv, password_file) == first
    assert (inv / "group_vars/all/vault.yml").read_bytes() == vault_bytes, (
        "no needless re-encryption"
    )
    main = yaml.safe_load((inv / "group_vars/all/main.yml").read_text())
    assert main["coop_sizing_tier"] == "large"
    assert (inv / "state" / "last-deploy.yml").exists(), "playbook state must survive --force"
    assert sorted(p.name for p in out.iterdir()) == ["example"]


def test_force_with_wrong_password_fails_without_writing(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    answers = write_answers(example_raw())
    assert new(run, answers, out).exit_code == 0
    before = files_under(out)
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("not-the-password\n")
    result = new(run, answers, out, "--force", "--vault-password-file", str(wrong))
    assert result.exit_code == 1
    assert "cannot decrypt" in result.stderr
    assert "Traceback" not in result.output
    assert files_under(out) == before
    missing = tmp_path / "missing-pass"
    result = new(run, answers, out, "--force", "--vault-password-file", str(missing))
    assert result.exit_code == 1
    assert "cannot keep the existing secrets" in result.stderr
    assert not missing.exists()
    assert files_under(out) == before


def test_dry_run_writes_nothing_not_even_the_password_file(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    result = new(run, write_answers(example_raw()), out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert not isolated_env.exists()
    assert "Dry run: would write" in result.output
    for rel in FILES:
        assert rel in result.output
    assert "ansible-vault encrypted, 13 secrets (not shown)" in result.output
    assert "coop_institution_slug: example" in result.output
    assert "(would be created)" in result.output


def test_dry_run_with_force_shows_a_diff(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    assert new(run, write_answers(example_raw()), out).exit_code == 0
    before = files_under(out)
    raw = example_raw()
    raw["retention"]["ip_days"] = 3
    result = new(run, write_answers(raw, "b.yml"), out, "--force", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-mastodon_ip_retention_days: 7" in result.output
    assert "+mastodon_ip_retention_days: 3" in result.output
    assert "--- hosts.yml: unchanged" in result.output
    assert files_under(out) == before


def test_password_file_inside_inventories_is_refused(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    inside = out / "example.pass"
    result = new(run, write_answers(example_raw()), out, "--vault-password-file", str(inside))
    assert result.exit_code == 1
    assert "inside" in result.stderr
    assert not out.exists()


def test_ansible_vault_password_file_env_is_used(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, isolated_env: Path
) -> None:
    pw = tmp_path / "env-pass"
    pw.write_text("from-the-environment\n")
    out = tmp_path / "inventories"
    result = new(
        run, write_answers(example_raw()), out, env={"ANSIBLE_VAULT_PASSWORD_FILE": str(pw)}
    )
    assert result.exit_code == 0, result.output
    assert f"using {pw}" in result.output
    assert vault_of(out / "example", pw)
    assert not isolated_env.exists()


def test_oidc_without_a_client_secret_is_an_error(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path
) -> None:
    raw = example_raw()
    raw["sso"] = {"mode": "oidc", "oidc": {"display_name": "SSO", "issuer": "https://idp.example.edu",
                                           "client_id": "m"}}  # fmt: skip
    out = tmp_path / "inventories"
    result = new(run, write_answers(raw), out)
    assert result.exit_code == 1
    assert "sso.oidc.client_secret: required" in result.stderr
    assert "INSTANCE_CLI_OIDC_CLIENT_SECRET" in result.stderr
    assert not out.exists()


def test_any_failure_while_writing_leaves_nothing_behind(
    run: Run,
    write_answers: Callable[..., Path],
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "inventories"
    out.mkdir()

    def boom(src: Path, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    real_rename = Path.rename

    def failing_rename(self: Path, target: Any) -> Any:
        if self.name.startswith(".example.new-"):
            boom(self, target)
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    result = new(run, write_answers(example_raw()), out)
    assert result.exit_code == 1
    assert "No space left on device; nothing was written" in result.stderr
    assert list(out.iterdir()) == []
    assert not (isolated_env / "vault-passwords" / "example.txt").exists()


def test_failure_during_force_restores_the_old_inventory(
    run: Run,
    write_answers: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "inventories"
    answers = write_answers(example_raw())
    assert new(run, answers, out).exit_code == 0
    before = files_under(out)

    def broken_write_tree(*args: Any) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(write, "_write_tree", broken_write_tree)
    result = new(run, answers, out, "--force")
    assert result.exit_code == 1
    assert files_under(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["example"]


def test_missing_answers_file_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    result = run("new", "--answers", str(tmp_path / "nope.yml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def interactive_input(owner: str = "", email_domains: str = "", tail: tuple[str, ...] = ()) -> str:
    lines = [
        "Example University",  # institution.name
        "Example",  # short_name
        "",  # slug (derived: example)
        "example-university.edu",  # domains.local
        "social.example-university.edu",  # domains.web
        "IT Services",  # admin.name
        "not an email",  # admin.email -> re-asked
        "it@example-university.edu",
        owner,  # owner.username ("" keeps admin)
        "400",  # users.expected
        "",  # registrations.mode (approval)
        email_domains,  # email_domains ("" keeps the default)
        "en, de",  # languages
        "",  # federation.mode
        "alice", "alice@example-university.edu", "",  # moderator 1
        "bob", "bob@example-university.edu", "Admin",  # moderator 2
        "no",  # no third moderator
        "DPO office", "dpo@example-university.edu", "Germany", "Some authority", "",
        "", "", "",  # retention ip/session/media
        "",  # analytics.mode (off)
        "sftp:backup@backup.example-university.edu:/srv/restic/example", "", "",  # backup
        "smtp.example-university.edu", "", "", "",  # smtp
        "none",  # sso.mode
        "r 6", "a", "Be kind to newcomers.", "", "e 1", "Be respectful.", "keep it short", "done",
        "opsadmin",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExampleKey00 ops@x",
        "no",  # no second admin
        "192.0.2.10", "", "", "",  # host address/name/timezone, mastodon.version
        *tail,  # answers to re-asked questions
        "",  # SMTP password (hidden prompt)
        "yes",  # write it (after the summary)
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_interactive_new_asks_reasks_and_writes(
    run: Run, tmp_path: Path, isolated_env: Path
) -> None:
    out = tmp_path / "inventories"
    result = run("new", "--output-dir", str(out), input=interactive_input())
    assert result.exit_code == 0, result.output
    assert 'Invalid: expected an email address like it@example.edu, got "not an email"' in (
        result.output
    )
    assert "Days to keep IP addresses" in result.output  # help text shown
    answers = yaml.safe_load((out / "example" / "answers.yml").read_text())
    assert answers["admin"]["email"] == "it@example-university.edu"
    assert answers["languages"] == ["en", "de"]
    assert answers["moderators"][1]["role"] == "Admin"
    texts = [r["text"] for r in answers["rules"]]
    assert texts[0] == "Be respectful."
    assert texts[-1] == "Be kind to newcomers."
    assert len(texts) == 6
    assert answers["retention"] == {"ip_days": 7, "session_days": 30, "media_cache_days": None}
    assert "Where the vault password and the restic password are also kept" in result.output
    assert answers["backup"]["escrow"].startswith("the IT service's password manager")


def test_interactive_reasks_fields_named_by_cross_checks_and_dash_clears(
    run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    tail = ("carol", "carol@example-university.edu", "", "dave", "dave@example-university.edu",
            "", "no")  # fmt: skip
    text = interactive_input(owner="alice", email_domains="-", tail=tail)
    result = run("new", "--output-dir", str(out), input=text)
    assert result.exit_code == 0, result.output
    assert "Invalid: moderators: expected people other than the owner" in result.output
    answers = yaml.safe_load((out / "example" / "answers.yml").read_text())
    assert answers["owner"]["username"] == "alice"
    assert [m["username"] for m in answers["moderators"]] == ["carol", "dave"]
    assert answers["registrations"]["email_domains"] == []
    main = yaml.safe_load((out / "example" / "group_vars/all/main.yml").read_text())
    assert main["mastodon_email_domain_allowlist"] == []


def test_interactive_eof_aborts_without_writing(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "inventories"
    result = run("new", "--output-dir", str(out), input="Example University\n")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "args", [[], ["new"], ["validate"], ["list"], ["sizing"], ["answers-reference"]]
)
def test_help_everywhere(run: Run, args: list[str]) -> None:
    result = run(*args, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_version_and_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "instance_cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("instance-cli, version ")
    proc = subprocess.run(
        [sys.executable, "-m", "instance_cli", "sizing", "--users", "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("users", "pgbouncer"), [(400, False), (2000, False), (5000, True)])
def test_pgbouncer_follows_the_tier_and_points_mastodon_at_it(
    run: Run, write_answers: Callable[..., Path], tmp_path: Path, users: int, pgbouncer: bool
) -> None:
    raw = example_raw()
    raw["users"]["expected"] = users
    out = tmp_path / "inventories"
    assert new(run, write_answers(raw), out).exit_code == 0
    main = yaml.safe_load((out / "example/group_vars/all/main.yml").read_text())
    postgresql, mastodon = role_options("postgresql"), role_options("mastodon")
    assert main["postgresql_pgbouncer_enabled"] is pgbouncer
    assert main["mastodon_db_pgbouncer"] is pgbouncer
    if pgbouncer:
        host = postgresql["postgresql_pgbouncer_listen_address"]["default"]
        port = postgresql["postgresql_pgbouncer_port"]["default"]
    else:  # the role's own defaults: the socket, with peer authentication
        host = mastodon["mastodon_db_host"]["default"]
        port = mastodon["mastodon_db_port"]["default"]
    assert (main["mastodon_db_host"], main["mastodon_db_port"]) == (host, port)
