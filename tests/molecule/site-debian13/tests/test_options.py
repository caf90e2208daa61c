"""What a person would check after `playbooks/site.yml` with the options site-debian12 does not run.

The site-debian13 scenario deploys the example institution on Debian 13 with nginx in
`provided` certificate mode (a throw-away CA made by prepare.yml), sshd on port 2222 and
PgBouncer in transaction pooling mode in front of PostgreSQL. The site checks that hold
unchanged under these options come from ../../site-common/tests/test_site.py (imported, not
copied); the fixture `tls_root` below points them at the throw-away CA instead of pebble's.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import socket
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import test_site as site  # conftest.py puts site-common/tests on the path
import yaml
from test_site import (  # noqa: F401  (the site checks that hold under the options, run here too)
    test_40_mb_upload_reaches_the_app_with_a_write_media_token,
    test_api_response_carries_mastodons_security_headers,
    test_app_authorizes_the_host_and_redirects_plain_http_like_mastodon,
    test_application_cache_control_reaches_the_client,
    test_backend_port_listens_on_loopback_only,
    test_env_production_is_private_to_mastodon,
    test_fail2ban_sshd_jail_is_active,
    test_health_endpoints_answer_200_over_https,
    test_health_gate_fails_while_web_is_stopped_behind_a_warm_cache,
    test_health_probes_fail_while_a_backing_service_is_stopped,
    test_html_page_carries_mastodons_security_headers_and_csp,
    test_landing_page_says_it_is_the_stand_in,
    test_last_deploy_is_recorded_on_the_controller,
    test_mastodon_role_owns_its_database,
    test_media_upload_refuses_no_token_a_wrong_scope_and_a_wrong_type,
    test_nginx_sends_the_host_and_https_the_app_requires,
    test_postgresql_runs_the_sizing_tier,
    test_postgresql_socket_uses_peer_authentication,
    test_redis_keeps_jobs_and_data,
    test_redis_requires_the_password,
    test_scenario_groups_are_the_example_institutions_groups,
    test_static_file_carries_upstream_nginx_headers,
    test_streaming_websocket_through_nginx_receives_an_event_published_in_redis,
    test_the_cooperatives_shared_blocklist_is_applied,
    test_tls_scan_shows_mozilla_intermediate_and_hsts,
)

SCRATCH = site.SCRATCH
SERVER_NAME = site.SERVER_NAME
OPTIONS = yaml.safe_load(
    (site.SCENARIO_DIR / "host_vars" / "db-site13" / "10-options.yml").read_text()
)
SSH_PORT = int(OPTIONS["common_ssh_port"])
PGBOUNCER_PORT = int(OPTIONS["mastodon_db_port"])
site.DB_HOST = OPTIONS["mastodon_db_host"]  # Mastodon connects through PgBouncer here
TLS = SCRATCH / "tls"
TLS_DIR = f"/etc/nginx/tls/{SERVER_NAME}"
PROVIDED_KEY = f"{TLS_DIR}/provided-privkey.pem"
PROVIDED_CHAIN = f"{TLS_DIR}/provided-fullchain.pem"
DATABASE = site.MAIN_VARS["postgresql_mastodon_database"]


@pytest.fixture(scope="module")
def tls_root() -> Path:
    """The throw-away CA that signed the provided certificate (the imported checks' root)."""
    return TLS / "ca.pem"


@pytest.fixture(scope="module")
def served_key_types() -> set[str]:
    """prepare.yml makes the provided pair with an RSA key: nginx serves that one certificate."""
    return {"RSA"}


def _pgbouncer_admin(host: Any, command: str) -> list[dict[str, str]]:
    """Rows of a PgBouncer admin-console command (the `pgbouncer` user over the Unix socket,
    as the postgres OS user PgBouncer runs as)."""
    out = host.run(
        "runuser -u postgres -- psql -h /var/run/postgresql -p %s -U pgbouncer pgbouncer"
        " -X --csv -c %s",
        str(PGBOUNCER_PORT),
        command,
    )
    assert out.rc == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def _psql(host: Any, query: str, **variables: str) -> str:
    """One query as the postgres superuser; psql variables are passed as -v name=value."""
    options = " ".join(f"-v {name}={shlex.quote(value)}" for name, value in variables.items())
    out = host.run(f"echo %s | runuser -u postgres -- psql -XAt -d %s {options}", query, DATABASE)
    assert out.rc == 0, out.stderr
    return str(out.stdout.strip())


# --- nginx: provided certificate ----------------------------------------------------------


def test_nginx_serves_exactly_the_provided_certificate(address: str) -> None:
    generated = ssl.PEM_cert_to_DER_cert((TLS / "server.pem").read_text())
    # Verifying against the throw-away CA also proves the chain and the name.
    context = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    with (
        socket.create_connection((address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(generated).hexdigest()


def test_provided_key_is_root_only_and_matches_the_certificate(host: Any) -> None:
    key = host.file(PROVIDED_KEY)
    assert key.is_file
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    tls_dir = host.file(TLS_DIR)
    assert (tls_dir.user, tls_dir.mode) == ("root", 0o700)
    # Compare public halves only: the private key never leaves the container.
    from_key = host.run("openssl pkey -in %s -pubout", PROVIDED_KEY)
    from_cert = host.run("openssl x509 -in %s -noout -pubkey", PROVIDED_CHAIN)
    assert from_key.rc == 0 and from_cert.rc == 0, from_key.stderr + from_cert.stderr
    assert from_key.stdout == from_cert.stdout
    site_conf = host.file("/etc/nginx/sites-available/mastodon.conf").content_string
    assert f"ssl_certificate_key {PROVIDED_KEY};" in site_conf


def test_nginx_configuration_test_passes(host: Any) -> None:
    out = host.run("nginx -t")
    assert out.rc == 0, out.stderr
    assert "test is successful" in out.stderr


def test_no_acme_client_in_provided_mode(host: Any) -> None:
    assert not host.package("certbot").is_installed
    timers = host.run("systemctl list-unit-files --no-legend 'certbot*'")
    assert timers.stdout.strip() == ""
    assert not host.file("/etc/letsencrypt").exists
    site_conf = host.file("/etc/nginx/sites-available/mastodon.conf").content_string
    assert "letsencrypt" not in site_conf
    assert "bootstrap-" not in site_conf


# --- SSH on another port ------------------------------------------------------------------


def test_sshd_listens_on_the_new_port_only(host: Any) -> None:
    listening = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp")]
    ports = {s.rsplit(":", 1)[1] for s in listening}
    assert str(SSH_PORT) in ports, listening
    assert "22" not in ports, listening
    effective = host.run("sshd -T")
    assert effective.rc == 0, effective.stderr
    assert [line for line in effective.stdout.splitlines() if line.startswith("port ")] == [
        f"port {SSH_PORT}"
    ]


def _accepted_tcp_ports(ruleset: dict[str, Any]) -> set[int]:
    """TCP destination ports of the input chain's rules, from `nft -j` output."""
    ports: set[int] = set()
    for item in ruleset["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            match = expr.get("match", {})
            if match.get("left", {}).get("payload", {}).get("field") != "dport":
                continue
            right = match["right"]
            ports.update(right["set"] if isinstance(right, dict) else [right])
    return ports


def test_firewall_opens_the_new_ssh_port_instead_of_22(host: Any) -> None:
    out = host.run("nft -j list chain inet filter input")
    assert out.rc == 0, out.stderr
    ports = _accepted_tcp_ports(json.loads(out.stdout))
    assert ports == {SSH_PORT, 80, 443}


def test_fail2ban_watches_the_new_ssh_port(host: Any) -> None:
    out = host.run("fail2ban-client get sshd action nftables-multiport port")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == str(SSH_PORT)


def test_only_the_new_ssh_port_and_web_answer_from_another_container(
    probe: str, address: str
) -> None:
    ports = sorted(set(site.PROBED_PORTS) | {SSH_PORT, PGBOUNCER_PORT})
    script = " ".join(
        f"(timeout 4 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo {port}) &"
        for port in ports
    )
    out = site._run(["docker", "exec", probe, "bash", "-c", f"{script} wait"], timeout=30)
    assert {int(p) for p in out.stdout.split()} == {SSH_PORT, 80, 443}
    banner = site._run(
        [
            "docker",
            "exec",
            probe,
            "timeout",
            "5",
            "bash",
            "-c",
            f"exec 3<>/dev/tcp/{address}/{SSH_PORT}; head -n 1 <&3",
        ],
        timeout=15,
    )
    assert banner.stdout.startswith("SSH-2.0-OpenSSH"), banner.stdout + banner.stderr


# Key login, sudo and the refused passwords on the new port: test_host_hardening.py, which
# reads the port from this scenario's variables.


def test_nothing_answers_on_port_22_from_another_container(ssh_probe: str, address: str) -> None:
    out = site._run(
        [
            "docker",
            "exec",
            ssh_probe,
            *site._ssh(address),
            "-p",
            "22",
            "-i",
            "/root/admin_ed25519",
            f"opsadmin@{address}",
            "id",
            "-un",
        ],
        timeout=60,
    )
    assert out.returncode == 255
    # Filtered (dropped), not refused: the firewall's default deny.
    assert "timed out" in out.stderr, out.stderr


# --- PgBouncer ----------------------------------------------------------------------------


def test_pgbouncer_listens_on_loopback_only(host: Any) -> None:
    tcp = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp://")]
    on_port = [s for s in tcp if s.rsplit(":", 1)[1] == str(PGBOUNCER_PORT)]
    assert on_port, tcp
    assert {s[len("tcp://") :].rsplit(":", 1)[0] for s in on_port} <= {"127.0.0.1", "::1"}


def test_pgbouncer_pools_transactions(host: Any) -> None:
    config = {row["key"]: row["value"] for row in _pgbouncer_admin(host, "SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    assert config["listen_addr"] == "127.0.0.1"
    assert config["auth_type"] == "scram-sha-256"
    # A PostgreSQL outage fails requests after this many seconds instead of PgBouncer's 120.
    assert config["query_wait_timeout"] == "15"
    userlist = host.file("/etc/pgbouncer/userlist.txt")
    assert (userlist.user, userlist.mode) == ("postgres", 0o600)


def _env(host: Any) -> dict[str, str]:
    out = host.run("cat %s", site.ENV_FILE)
    assert out.rc == 0, out.stderr
    pairs = (line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_mastodon_connects_to_pgbouncer_without_prepared_statements(host: Any) -> None:
    env = _env(host)
    assert env["DB_HOST"] == "127.0.0.1"
    assert env["DB_PORT"] == str(PGBOUNCER_PORT)
    assert env["PREPARED_STATEMENTS"] == "false"
    assert env.get("DB_PASS"), "PgBouncer needs a password: DB_PASS must be set"


def _xacts(host: Any) -> int:
    rows = [r for r in _pgbouncer_admin(host, "SHOW STATS") if r["database"] == DATABASE]
    assert rows, "PgBouncer has no statistics for the Mastodon database"
    return int(rows[0]["total_xact_count"])


def test_a_write_through_the_app_goes_through_pgbouncer(host: Any) -> None:
    marker = f"siteopt-{uuid.uuid4().hex[:12]}"
    before = _xacts(host)
    posted = host.run(
        "curl -sS -o /dev/null -w '%%{http_code}' --max-time 20 -X POST"
        # What nginx adds: Mastodon in production refuses another Host and redirects plain HTTP.
        " -H %s -H 'X-Forwarded-Proto: https'"
        " --data-urlencode marker=%s http://127.0.0.1:3000/api/v1/standin/jobs",
        f"Host: {SERVER_NAME}",
        marker,
    )
    assert posted.stdout == "202", posted.stdout + posted.stderr
    query = "SELECT count(*) FROM standin_job_runs WHERE marker = :'marker'"
    deadline = time.monotonic() + 60
    while _psql(host, query, marker=marker) != "1":
        assert time.monotonic() < deadline, "sidekiq did not write the job's row within 60 s"
        time.sleep(1)
    # The web request and the sidekiq job ran their transactions through PgBouncer...
    assert _xacts(host) > before
    clients = [r for r in _pgbouncer_admin(host, "SHOW CLIENTS") if r["database"] == DATABASE]
    assert {r["user"] for r in clients} == {site.MAIN_VARS["mastodon_db_user"]}
    # ...and every server connection of Mastodon's role is one of PgBouncer's.
    servers = [r for r in _pgbouncer_admin(host, "SHOW SERVERS") if r["database"] == DATABASE]
    pgbouncer_ports = {r["local_port"] for r in servers}
    backends = _psql(
        host,
        "SELECT coalesce(host(client_addr), 'socket') || ' ' || client_port"
        " FROM pg_stat_activity WHERE usename = :'user' AND datname = :'db'",
        user=site.MAIN_VARS["mastodon_db_user"],
        db=DATABASE,
    ).splitlines()
    assert backends, "Mastodon's role has no server connection"
    for backend in backends:
        addr, port = backend.split()
        assert addr == "127.0.0.1", backend
        assert port in pgbouncer_ports, (backend, sorted(pgbouncer_ports))


def test_postgresql_connection_limit_still_holds(host: Any) -> None:
    max_connections = int(_psql(host, "SHOW max_connections"))
    pool_size = int(
        {r["key"]: r["value"] for r in _pgbouncer_admin(host, "SHOW CONFIG")}["default_pool_size"]
    )
    # The number the role was given (the inventory derives it from Mastodon's concurrency), as
    # the rendered settings file states it.
    conf = host.check_output("cat /etc/postgresql/*/main/conf.d/50-mastodon.conf")
    found = re.search(r"sized for (\d+) connections", conf)
    assert found, conf[:400]
    needed = int(found.group(1))
    assert needed < max_connections
    assert pool_size < max_connections
    in_use = int(_psql(host, "SELECT count(*) FROM pg_stat_activity"))
    assert in_use < max_connections


# --- secrets ------------------------------------------------------------------------------


def test_verbose_ansible_output_contains_no_secret() -> None:
    text = (SCRATCH / "ansible-v.log").read_text(errors="replace")
    # The log must really hold the -v converge of the tasks that handle these secrets.
    assert "Install the provided private key from its content" in text
    assert "Write the PgBouncer user list" in text
    assert "Write .env.production" in text
    key_lines = [
        line
        for line in (TLS / "server.key").read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    assert len(key_lines) > 10
    secrets = [*site._vault_values(), *key_lines]
    leaked = [f"{s[:3]}…({len(s)} chars)" for s in secrets if s in text]
    assert not leaked, f"secret values in the -v output: {leaked}"
