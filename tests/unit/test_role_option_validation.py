"""The roles' validate.yml refuse contradictory option input with a message that says what to
change: nginx's provided certificate mode, common's SSH port move, PgBouncer in postgresql and
mastodon. One ansible-playbook run on the controller (connection local, nothing changed on the
host) runs each role's validate.yml once per case and records whether it failed and why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Values every case of a role needs so that only the option under test can fail.
MASTODON_BASE: dict[str, Any] = {
    "mastodon_local_domain": "example.edu",
    "mastodon_owner_email": "owner@example.edu",
    "mastodon_owner_password": "not-a-real-password",
    "mastodon_db_password": "not-a-real-password",
    **{
        f"mastodon_{name}": "x" * 32
        for name in (
            "secret_key_base",
            "vapid_private_key",
            "vapid_public_key",
            "active_record_encryption_primary_key",
            "active_record_encryption_deterministic_key",
            "active_record_encryption_key_derivation_salt",
        )
    },
}
NGINX_BASE: dict[str, Any] = {
    "nginx_server_name": "social.example.edu",
    "nginx_web_upstream": "127.0.0.1:3000",
    "nginx_streaming_upstreams": ["127.0.0.1:4000"],
    "nginx_certificate_mode": "provided",
}
POSTGRESQL_BASE: dict[str, Any] = {
    "postgresql_mastodon_password": "not-a-real-password",
    "postgresql_connections_needed": 40,
    "postgresql_pgbouncer_enabled": True,
}
COMMON_BASE: dict[str, Any] = {
    "common_admin_users": [{"name": "ops", "ssh_authorized_keys": ["ssh-ed25519 AAAA ops"]}],
    "common_swap_enabled": False,
}
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"

# name -> (role, variables, None when validate must pass, else a fragment of its message)
CASES: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "nginx_provided_with_content": (
        "nginx",
        {**NGINX_BASE, "nginx_certificate_content": PEM, "nginx_certificate_key_content": KEY},
        None,
    ),
    "nginx_provided_without_certificate": (
        "nginx",
        NGINX_BASE,
        "nginx_certificate_mode provided needs",
    ),
    "nginx_provided_certificate_without_key": (
        "nginx",
        {**NGINX_BASE, "nginx_certificate_content": PEM},
        "nginx_certificate_mode provided needs",
    ),
    "nginx_provided_files_missing_on_host": (
        "nginx",
        {
            **NGINX_BASE,
            "nginx_certificate_path": "/nonexistent/fullchain.pem",
            "nginx_certificate_key_path": "/nonexistent/privkey.pem",
        },
        "/nonexistent/fullchain.pem does not exist",
    ),
    "nginx_provided_content_and_paths": (
        "nginx",
        {
            **NGINX_BASE,
            "nginx_certificate_content": PEM,
            "nginx_certificate_key_content": KEY,
            "nginx_certificate_path": "/etc/ssl/other.pem",
        },
        "not both",
    ),
    "nginx_without_wired_upstreams": (
        "nginx",
        {**NGINX_BASE, "nginx_web_upstream": "", "nginx_streaming_upstreams": []},
        "wires them from mastodon_web_port and mastodon_streaming_ports",
    ),
    "nginx_renamed_streaming_upstream": (
        "nginx",
        {**NGINX_BASE, "nginx_streaming_upstream": "127.0.0.1:4000"},
        "renamed to nginx_streaming_upstreams",
    ),
    "common_ssh_port_moved_under_ssh": (
        "common",
        {**COMMON_BASE, "common_ssh_port": 2222, "__probe_connection": "ansible.builtin.ssh"},
        "common_ssh_port_change_acknowledged",
    ),
    "common_ssh_port_moved_acknowledged": (
        "common",
        {
            **COMMON_BASE,
            "common_ssh_port": 2222,
            "common_ssh_port_change_acknowledged": True,
            "__probe_connection": "ssh",
        },
        None,
    ),
    "common_ssh_port_moved_over_docker": (
        "common",
        {**COMMON_BASE, "common_ssh_port": 2222, "__probe_connection": "community.docker.docker"},
        None,
    ),
    "postgresql_pgbouncer_ok": ("postgresql", POSTGRESQL_BASE, None),
    "postgresql_connections_needed_not_wired": (
        "postgresql",
        {**POSTGRESQL_BASE, "postgresql_connections_needed": 0},
        "derives it from mastodon_web_concurrency",
    ),
    "postgresql_pgbouncer_on_the_server_port": (
        "postgresql",
        {**POSTGRESQL_BASE, "postgresql_pgbouncer_port": 5432},
        "must differ from postgresql_port",
    ),
    "postgresql_pgbouncer_pool_over_max_connections": (
        "postgresql",
        {**POSTGRESQL_BASE, "postgresql_pgbouncer_default_pool_size": 100},
        "below postgresql_max_connections",
    ),
    "postgresql_pgbouncer_waits_forever": (
        "postgresql",
        {**POSTGRESQL_BASE, "postgresql_pgbouncer_query_wait_timeout": 0},
        "postgresql_pgbouncer_query_wait_timeout must be a number of seconds of at least 1",
    ),
    "mastodon_pgbouncer_ok": (
        "mastodon",
        {
            **MASTODON_BASE,
            "mastodon_db_pgbouncer": True,
            "mastodon_db_host": "127.0.0.1",
            "mastodon_db_port": 6432,
        },
        None,
    ),
    "mastodon_pgbouncer_without_password": (
        "mastodon",
        {
            **MASTODON_BASE,
            "mastodon_db_pgbouncer": True,
            "mastodon_db_host": "127.0.0.1",
            "mastodon_db_port": 6432,
            "mastodon_db_password": "",
        },
        "PgBouncer has no peer",
    ),
    "mastodon_secrets_complete": ("mastodon", MASTODON_BASE, None),
    "mastodon_empty_active_record_key": (
        "mastodon",
        {**MASTODON_BASE, "mastodon_active_record_encryption_primary_key": ""},
        "mastodon_active_record_encryption_primary_key empty: Mastodon refuses to boot without"
        " ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
    ),
    "mastodon_blank_secret_key_base_and_salt": (
        "mastodon",
        {
            **MASTODON_BASE,
            "mastodon_secret_key_base": "  ",
            "mastodon_active_record_encryption_key_derivation_salt": "",
        },
        "mastodon_secret_key_base, mastodon_active_record_encryption_key_derivation_salt empty",
    ),
    "mastodon_pgbouncer_migrations_through_it": (
        "mastodon",
        {**MASTODON_BASE, "mastodon_db_pgbouncer": True},
        "migrations cannot run through transaction pooling",
    ),
}


def _playbook() -> list[dict[str, Any]]:
    """One play per case, so every case starts from the role's defaults."""
    plays = []
    for name, (role, variables, _) in CASES.items():
        variables = dict(variables)
        connection = variables.pop("__probe_connection", None)
        tasks: list[dict[str, Any]] = [
            {
                "name": f"Validate {name}",
                "block": [
                    {
                        "name": "Run the role's validate.yml",
                        "ansible.builtin.include_role": {
                            "name": role,
                            "tasks_from": "validate.yml",
                        },
                    },
                    {
                        "name": "Record success",
                        "ansible.builtin.copy": {
                            "content": "{{ {'failed': false} | to_json }}",
                            "dest": f"{{{{ out_dir }}}}/{name}.json",
                            "mode": "0644",
                        },
                        "vars": {"ansible_connection": "local"},
                    },
                ],
                "rescue": [
                    {
                        "name": "Record the failure message",
                        "ansible.builtin.copy": {
                            # A looped assert says "One or more items failed": add the
                            # messages of the failed items.
                            "content": (
                                "{{ {'failed': true, 'msg': ([ansible_failed_result.msg]"
                                " + (ansible_failed_result.results | default([])"
                                " | selectattr('failed', 'defined') | selectattr('failed')"
                                " | map(attribute='msg') | list)) | join(' | ')} | to_json }}"
                            ),
                            "dest": f"{{{{ out_dir }}}}/{name}.json",
                            "mode": "0644",
                        },
                        "vars": {"ansible_connection": "local"},
                    }
                ],
            }
        ]
        play_vars = dict(variables)
        if connection:
            # What the SSH-port check reads; the tasks themselves still run locally.
            play_vars["ansible_connection"] = connection
        plays.append(
            {
                "name": name,
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars": play_vars,
                "tasks": tasks,
            }
        )
    return plays


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("validate")
    playbook = work / "validate.yml"
    playbook.write_text(yaml.safe_dump(_playbook(), sort_keys=False))
    binary = Path(sys.executable).parent / "ansible-playbook"
    command = str(binary) if binary.exists() else shutil.which("ansible-playbook")
    assert command, "ansible-playbook not found"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    run = subprocess.run(
        [
            command,
            "-i",
            "localhost,",
            "-e",
            json.dumps({"out_dir": str(work), "ansible_python_interpreter": sys.executable}),
            str(playbook),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {name: json.loads((work / f"{name}.json").read_text()) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_validate_accepts_or_refuses_with_a_clear_message(
    outcomes: dict[str, dict[str, Any]], name: str
) -> None:
    _, _, expected = CASES[name]
    outcome = outcomes[name]
    if expected is None:
        assert not outcome["failed"], outcome.get("msg")
    else:
        assert outcome["failed"], f"{name}: validate.yml accepted contradictory input"
        assert expected in outcome["msg"], outcome["msg"]
    secrets = [
        v
        for k, v in CASES[name][1].items()
        if isinstance(v, str) and len(v) >= 16 and re.search(r"password|secret|_key$|salt", k)
    ]
    assert not [s for s in secrets if s in outcome.get("msg", "")], "a value in the message"
