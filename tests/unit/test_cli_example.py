"""The committed example institution: in sync with the templates, lint-clean, and readable by
ansible-inventory with its test-only vault password."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from cli_testlib import (
    COOPERATIVE,
    EXAMPLE_ANSWERS,
    EXAMPLE_INVENTORY,
    EXAMPLE_PASS,
    REPO,
    example_raw,
    files_under,
)

from instance_cli.plan import CONNECTIONS_NEEDED_EXPRESSION

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def tool(name: str) -> str:
    found = VENV_BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_committed_example_matches_regeneration(run: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "inventories"
    result = run(
        "new",
        "--answers",
        str(EXAMPLE_ANSWERS),
        "--output-dir",
        str(out),
        "--vault-password-file",
        str(EXAMPLE_PASS),
        "--cooperative",
        str(COOPERATIVE),
    )
    assert result.exit_code == 0, result.output
    fresh = files_under(out / "example")
    committed = {
        k: v for k, v in files_under(EXAMPLE_INVENTORY).items() if not k.startswith("state/")
    }
    assert sorted(fresh) == sorted(committed)
    for rel, content in fresh.items():
        if rel == "group_vars/all/vault.yml":
            assert committed[rel].startswith(b"$ANSIBLE_VAULT;1.1;AES256")
            continue
        assert content == committed[rel], (
            f"inventories/example/{rel} drifted from the templates; regenerate it (see "
            "examples/README.md)"
        )


def test_generated_yaml_passes_yamllint_strict(run: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "inventories"
    raw = example_raw()
    long_key = "ssh-rsa AAAAB3NzaC1yc2E" + "A" * 700 + " someone@a-rather-long-host-name"
    raw["admins"][0]["ssh_keys"].append(long_key)
    raw["institution"]["name"] = ("A University With A Rather Long Name " * 3).strip()
    answers = tmp_path / "a.yml"
    answers.write_text(yaml.safe_dump(raw))
    assert run("new", "--answers", str(answers), "--output-dir", str(out)).exit_code == 0
    targets = [str(p) for p in (out / "example").rglob("*.yml") if p.name != "vault.yml"]
    targets.append(str(EXAMPLE_ANSWERS))
    proc = subprocess.run(
        [tool("yamllint"), "--strict", "-c", str(REPO / ".yamllint"), *targets],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for target in targets:
        assert Path(target).read_text().startswith("---\n")


# Inventory directories hold files that are not inventory sources (answers.yml, community/,
# state/); ansible.cfg must tell ansible-inventory to skip them, or it reads answers.yml as
# groups. This is the [inventory] section the repository's ansible.cfg needs.
IGNORE_SECTION = (
    "\n[inventory]\n"
    "# Not inventory sources: the CLI's answers, community texts, playbooks' state.\n"
    "ignore_patterns = ^answers\\.yml$, ^community$, ^state$\n"
)


def ansible_inventory_list(config: Path) -> tuple[dict[str, Any], str]:
    env = {
        **os.environ,
        "ANSIBLE_VAULT_PASSWORD_FILE": str(EXAMPLE_PASS),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_LOCAL_TEMP": "/tmp/instance-cli-test-ansible-tmp",
    }
    proc = subprocess.run(
        [tool("ansible-inventory"), "-i", "inventories/example", "--list"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def check_example_inventory(data: dict[str, Any], stderr: str) -> None:
    # groups as designed, and nothing parsed out of answers.yml or community/
    assert set(data["all"]["children"]) == {
        "ungrouped",
        "mastodon",
        "postgresql",
        "redis",
        "backup",
    }
    assert set(data["mastodon"]["children"]) == {
        "mastodon_web",
        "mastodon_sidekiq",
        "mastodon_streaming",
    }
    for group in ("mastodon_web", "mastodon_sidekiq", "mastodon_streaming", "postgresql",
                  "redis", "backup"):  # fmt: skip
        assert data[group]["hosts"] == ["example-1"], group
    assert "WARNING" not in stderr, stderr
    host = data["_meta"]["hostvars"]["example-1"]
    assert host["ansible_host"] == "192.0.2.10"
    assert host["coop_institution_slug"] == "example"
    # An expression over Mastodon's concurrency (ansible-inventory does not evaluate it; the
    # number it gives is tested in test_wiring.py).
    assert host["postgresql_connections_needed"] == CONNECTIONS_NEEDED_EXPRESSION
    assert host["mastodon_local_domain"] == "example-university.edu"
    assert host["mastodon_web_domain"] == "social.example-university.edu"
    assert host["instance_settings_registrations_mode"] == "approved"
    assert host["mastodon_db_password"] == "{{ vault_postgresql_mastodon_password }}"
    assert (
        host["mastodon_active_record_encryption_key_derivation_salt"]
        == "{{ vault_mastodon_active_record_encryption_key_derivation_salt }}"
    )
    for key in ("vault_mastodon_secret_key_base", "vault_postgresql_mastodon_password",
                "vault_mastodon_vapid_public_key"):  # fmt: skip
        assert isinstance(host[key], str) and host[key], key
    assert len(host["vault_mastodon_secret_key_base"]) == 128


def test_ansible_inventory_reads_the_example_with_the_repository_config() -> None:
    """The real thing: `ansible-inventory -i inventories/example --list` with ansible.cfg."""
    check_example_inventory(*ansible_inventory_list(REPO / "ansible.cfg"))


def test_ansible_inventory_with_the_ignore_patterns_section(tmp_path: Path) -> None:
    """The same with IGNORE_SECTION added when ansible.cfg lacks it: proves the section works."""
    text = (REPO / "ansible.cfg").read_text()
    config = tmp_path / "ansible.cfg"
    config.write_text(text if "ignore_patterns" in text else text + IGNORE_SECTION)
    check_example_inventory(*ansible_inventory_list(config))
