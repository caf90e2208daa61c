"""What a person would check by hand after `playbooks/site.yml` on a fresh server.

Run whole by site-debian12 (molecule verify, testinfra); site-debian13, which deploys the role
options, runs the checks that hold under them through its test_options.py, which imports them.
Checks inside the container use testinfra's `host`; checks a remote user would make (ports
from another machine, TLS, uploads, SSH) run from the test host or from a probe container
against the container's address on the default bridge network.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))
from site_tokens import role_token
from site_vault import vault, vault_secret
from tls_policy import MOZILLA_INTERMEDIATE_TLS12

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
SCRATCH = Path(os.environ.get("SITE_TEST_DIR", "/nonexistent"))
SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "/nonexistent"))
EXAMPLE = REPO / "inventories" / "example"
MAIN_VARS = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "main.yml").read_text())
# Where Mastodon's database connections go: the inventory's socket, unless a scenario's host
# variables move them (site-debian13 sets its PgBouncer address here after importing).
DB_HOST = MAIN_VARS["mastodon_db_host"]
# The test-only switches the site scenarios add (the stand-in's release among them).
OVERRIDES = yaml.safe_load((REPO / "tests/molecule/site-common/test-overrides.yml").read_text())
SERVER_NAME: str = MAIN_VARS["nginx_server_name"]
ENV_FILE = "/home/mastodon/live/.env.production"
# puma and the streaming processes, on the ports the inventory wires into nginx.
MASTODON_PORTS = (MAIN_VARS["mastodon_web_port"], *MAIN_VARS["mastodon_streaming_ports"])
LOOPBACK_ONLY_PORTS = (*MASTODON_PORTS, MAIN_VARS["mastodon_db_port"], 6379)
PUBLIC_PORTS = {22, 80, 443}
# Everything else something in the container listens on (pebble 14000/15000 and its DNS
# 8053/8055 listen on all addresses; PgBouncer would use 6432) must be filtered.
PROBED_PORTS = sorted(PUBLIC_PORTS | set(LOOPBACK_ONLY_PORTS) | {6432, 8053, 8055, 14000, 15000})
HEALTH_PATHS = ("/health", "/api/v1/streaming/health")
# nginx's $upstream_cache_status (the site's X-Cached header) for an answer that did not come
# from the application just now.
FROM_CACHE = {"HIT", "STALE", "UPDATING", "REVALIDATED"}
# Mastodon's config.action_dispatch.default_headers, which it sends on every response.
MASTODON_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "0",
    "referrer-policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'; form-action 'none'"
PUBLIC_STALENESS = "stale-while-revalidate=30, stale-if-error=86400"
HSTS = "max-age=63072000; includeSubDomains"


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def tls_root(container: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root the served certificate chains to: here pebble's (pebble makes a new one at every
    start). site-debian13's test_options.py, which imports checks from this file, overrides it
    with the throw-away CA of nginx's provided mode."""
    out = _run(
        ["docker", "exec", container, "curl", "-sS", "-k", "https://localhost:15000/roots/0"]
    )
    assert out.returncode == 0 and "BEGIN CERTIFICATE" in out.stdout, out.stderr
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(out.stdout)
    return path


def _curl(address: str, root: Path, path: str, *extra: str) -> tuple[int, str]:
    out = _run(
        [
            "curl",
            "-sS",
            "--max-time",
            "120",
            "--resolve",
            f"{SERVER_NAME}:443:{address}",
            "--cacert",
            str(root),
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            *extra,
            f"https://{SERVER_NAME}{path}",
        ],
        timeout=150,
    )
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


def _request(address: str, root: Path, path: str, *extra: str) -> tuple[int, dict[str, str], str]:
    """One HTTPS request to the site: status, response headers (lower-case names), body."""
    with tempfile.TemporaryDirectory() as scratch:
        dump = Path(scratch) / "headers"
        code, body = _curl(address, root, path, "-D", str(dump), *extra)
        headers: dict[str, str] = {}
        for line in dump.read_text(errors="replace").splitlines()[1:]:
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                headers[key] = ", ".join(filter(None, (headers.get(key), value.strip())))
    return code, headers, body


def health_gate(address: str, root: Path, path: str) -> str | None:
    """The health gate through nginx: None when `path` answered 200 from the process itself.

    A 200 is not enough: nginx may hold a copy in its cache and answer from it (X-Cached HIT, or
    STALE while the upstream is down), so an answer from the cache fails the gate too.
    """
    code, headers, body = _request(address, root, path)
    if code != 200:
        return f"{path}: HTTP {code}"
    cached = headers.get("x-cached", "").upper()
    if cached in FROM_CACHE:
        return f"{path}: answered from nginx's cache (X-Cached: {cached})"
    if body.strip() != "OK":
        return f"{path}: unexpected body {body[:80]!r}"
    return None


# --- inventory under test ---------------------------------------------------------------


def _tree(node: dict[str, Any]) -> dict[str, Any]:
    children = node.get("children") or {}
    return {name: _tree(child or {}) for name, child in children.items()} | (
        {"<hosts>": len(node.get("hosts") or {})} if node.get("hosts") else {}
    )


def test_scenario_groups_are_the_example_institutions_groups() -> None:
    example = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["all"]
    scenario = yaml.safe_load((SCENARIO_DIR / "hosts.yml").read_text())["all"]
    example.pop("hosts", None)
    assert _tree(scenario) == _tree(example)


# --- services on the host -----------------------------------------------------------------


@pytest.mark.parametrize("port", LOOPBACK_ONLY_PORTS)
def test_backend_port_listens_on_loopback_only(host: Any, port: int) -> None:
    listening = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp://")]
    on_port = [s for s in listening if s.rsplit(":", 1)[1] == str(port)]
    assert on_port, f"nothing listens on port {port}: {listening}"
    for sock in on_port:
        address = sock[len("tcp://") :].rsplit(":", 1)[0]
        assert address in {"127.0.0.1", "::1"}, f"port {port} listens on {address}"
        # The Mastodon units bind BIND=127.0.0.1 and nothing else.
        if port in MASTODON_PORTS:
            assert address == "127.0.0.1", f"port {port} listens on {address}"


def test_env_production_is_private_to_mastodon(host: Any) -> None:
    env = host.file(ENV_FILE)
    assert env.is_file
    assert env.mode == 0o600
    assert env.user == "mastodon"
    assert env.group == "mastodon"
    # The inventory's values, in the units dotenv reads (retention in seconds, values with
    # characters dotenv would interpret single-quoted). The file holds secrets: no assertion
    # below may let pytest print its lines.
    lines = env.content_string.splitlines()
    day = 86400
    for line in (
        f"LOCAL_DOMAIN={MAIN_VARS['mastodon_local_domain']}",
        f"WEB_DOMAIN={MAIN_VARS['mastodon_web_domain']}",
        f"IP_RETENTION_PERIOD={MAIN_VARS['mastodon_ip_retention_days'] * day}",
        f"SESSION_RETENTION_PERIOD={MAIN_VARS['mastodon_session_retention_days'] * day}",
        f"EMAIL_DOMAIN_ALLOWLIST='{'|'.join(MAIN_VARS['mastodon_email_domain_allowlist'])}'",
        f"SMTP_FROM_ADDRESS='{MAIN_VARS['mastodon_smtp_from_address']}'",
        f"DB_HOST={DB_HOST}",
    ):
        found = line in lines
        assert found, f"{line.split('=', 1)[0]} is not {line.split('=', 1)[1]}"
    # The inventory gives the database user a password: the file carries the vault's (the
    # socket's peer authentication does not use it, PgBouncer would).
    passwords = [x for x in lines if x.startswith("DB_PASS=")]
    wanted = f"DB_PASS={vault_secret('vault_postgresql_mastodon_password')}"
    same = passwords == [wanted]
    assert same, f"{len(passwords)} DB_PASS lines, none or more than one, or not the vault's"
    names = {x.split("=", 1)[0] for x in lines if "=" in x and not x.startswith("#")}
    in_units = sorted(names & {"RAILS_ENV", "PORT", "BIND", "NODE_ENV"})
    assert in_units == [], "these belong in the units"


def test_postgresql_runs_the_sizing_tier(host: Any) -> None:
    def show(setting: str) -> str:
        out = host.run(f"runuser -u postgres -- psql -XAtc 'SHOW {setting}'")
        assert out.rc == 0, out.stderr
        return str(out.stdout.strip())

    assert show("max_connections") == str(MAIN_VARS["postgresql_max_connections"])
    assert show("shared_buffers") == MAIN_VARS["postgresql_shared_buffers"]
    assert show("work_mem") == MAIN_VARS["postgresql_work_mem"]
    assert show("password_encryption") == "scram-sha-256"


def test_mastodon_role_owns_its_database(host: Any) -> None:
    query = (
        "SELECT r.rolcanlogin, r.rolcreatedb, r.rolsuper, pg_get_userbyid(d.datdba) "
        "FROM pg_roles r, pg_database d WHERE r.rolname = 'mastodon' AND d.datname = :'db'"
    )
    database = MAIN_VARS["postgresql_mastodon_database"]
    out = host.run(
        f"echo {shlex.quote(query)} | runuser -u postgres -- psql -XAt"
        f" -v db={shlex.quote(database)}"
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "t|t|f|mastodon"


def test_the_cooperatives_shared_blocklist_is_applied(host: Any) -> None:
    """The example is a member: every entry of cooperative/blocklist.csv is a domain block on
    its server, with the entry's reason and the role's private comment."""
    lines = (REPO / "cooperative" / "blocklist.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    expected = sorted(
        "|".join([row[header.index("#domain")], row[header.index("#severity")],
                  row[header.index("#public_comment")]])
        for row in (line.split(",") for line in lines[1:] if line.strip())
    )  # fmt: skip
    query = (
        "SELECT domain || '|' || CASE severity WHEN 0 THEN 'silence' WHEN 1 THEN 'suspend'"
        " ELSE 'noop' END || '|' || public_comment FROM domain_blocks"
        " WHERE private_comment = 'From the cooperative''s shared blocklist (managed by Ansible)'"
        " ORDER BY domain"
    )
    database = MAIN_VARS["postgresql_mastodon_database"]
    out = host.run(
        f"echo {shlex.quote(query)} | runuser -u postgres -- psql -XAt -d {shlex.quote(database)}"
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip().splitlines() == expected
    assert len(expected) == 3


def test_postgresql_socket_uses_peer_authentication(host: Any) -> None:
    # root is not the mastodon OS user: peer authentication must refuse it.
    out = host.run("psql -XAtc 'SELECT 1' -U mastodon mastodon_production")
    assert out.rc != 0
    assert "Peer authentication failed" in out.stderr
    ok = host.run("runuser -u mastodon -- psql -XAtc 'SELECT current_user' mastodon_production")
    assert ok.rc == 0, ok.stderr
    assert ok.stdout.strip() == "mastodon"


def test_redis_requires_the_password(host: Any) -> None:
    out = host.run("redis-cli -h 127.0.0.1 --no-auth-warning SET site-test 1")
    assert "NOAUTH" in out.stdout + out.stderr


def _redis_config(host: Any, name: str) -> str:
    """What the running Redis says (CONFIG GET), authenticated with the vault's password."""
    password = vault_secret("vault_redis_password")
    out = host.run(
        f"REDISCLI_AUTH={shlex.quote(password)} redis-cli -h 127.0.0.1 --raw CONFIG GET {name}"
    )
    assert out.rc == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == name, out.stdout
    return lines[1]


def test_redis_keeps_jobs_and_data(host: Any) -> None:
    conf = host.file("/etc/redis/redis.conf")
    assert conf.mode == 0o640
    assert conf.user == "redis"
    # Sidekiq's queues must never be evicted, and survive a restart.
    assert _redis_config(host, "maxmemory-policy") == "noeviction"
    assert _redis_config(host, "appendonly") == "yes"
    assert _redis_config(host, "maxmemory") == str(_bytes(MAIN_VARS["redis_maxmemory"]))
    assert host.run("runuser -u redis -- test -d /var/lib/redis/appendonlydir").rc == 0


def _bytes(size: str) -> int:
    """Redis' own reading of a size like 256mb (1024-based, case-insensitive)."""
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "k": 1000, "m": 1000**2, "g": 1000**3}
    for unit, factor in units.items():
        if size.lower().endswith(unit):
            return int(size[: -len(unit)]) * factor
    return int(size)


def test_fail2ban_sshd_jail_is_active(host: Any) -> None:
    out = host.run("fail2ban-client status sshd")
    assert out.rc == 0, out.stderr
    assert "Currently banned" in out.stdout


# --- what another machine sees ------------------------------------------------------------


def test_only_ssh_and_web_answer_from_another_container(probe: str, address: str) -> None:
    # One bash per port in parallel, each bounded by `timeout 4`; print the ports that connect.
    script = " ".join(
        f"(timeout 4 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo {port}) &"
        for port in PROBED_PORTS
    )
    out = _run(["docker", "exec", probe, "bash", "-c", f"{script} wait"], timeout=30)
    open_ports = {int(p) for p in out.stdout.split()}
    assert open_ports == PUBLIC_PORTS


# --- HTTPS, TLS, uploads, health ----------------------------------------------------------


def test_https_certificate_chains_to_the_pebble_acme_server(address: str, tls_root: Path) -> None:
    context = ssl.create_default_context(cafile=str(tls_root))
    with (
        socket.create_connection((address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        cert = tls.getpeercert()
    issuer = dict(item[0] for item in cert["issuer"])
    assert "Pebble" in issuer.get("commonName", ""), issuer
    names = {value for kind, value in cert["subjectAltName"] if kind == "DNS"}
    assert SERVER_NAME in names


@pytest.fixture(scope="module")
def served_key_types() -> set[str]:
    """The key types of the certificates nginx serves: in ACME mode one ECDSA and one RSA
    certificate. site-debian13's test_options.py overrides it for its provided RSA pair."""
    return {"ECDSA", "RSA"}


def test_tls_scan_shows_mozilla_intermediate_and_hsts(
    address: str, served_key_types: set[str]
) -> None:
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    versions = {
        ScanCommand.SSL_2_0_CIPHER_SUITES: "SSLv2",
        ScanCommand.SSL_3_0_CIPHER_SUITES: "SSLv3",
        ScanCommand.TLS_1_0_CIPHER_SUITES: "TLSv1.0",
        ScanCommand.TLS_1_1_CIPHER_SUITES: "TLSv1.1",
        ScanCommand.TLS_1_2_CIPHER_SUITES: "TLSv1.2",
        ScanCommand.TLS_1_3_CIPHER_SUITES: "TLSv1.3",
    }
    scanner = Scanner()
    scanner.queue_scans(
        [
            ServerScanRequest(
                server_location=ServerNetworkLocation(SERVER_NAME, 443, address),
                scan_commands={*versions, ScanCommand.HTTP_HEADERS},
            )
        ]
    )
    (result,) = list(scanner.get_results())
    assert result.scan_result is not None, result.connectivity_error_trace
    accepted: dict[str, set[str]] = {}
    for command, label in versions.items():
        attempt = getattr(result.scan_result, command.value)
        assert attempt.result is not None, f"{label} scan failed: {attempt.error_trace}"
        suites = {s.cipher_suite.openssl_name for s in attempt.result.accepted_cipher_suites}
        if suites:
            accepted[label] = suites
    assert set(accepted) == {"TLSv1.2", "TLSv1.3"}
    # Each TLS 1.2 suite authenticates with one key type (ECDHE-ECDSA-… or ECDHE-RSA-…): nginx
    # offers exactly Mozilla's suites for the keys it has.
    wanted = {s for s in MOZILLA_INTERMEDIATE_TLS12 if s.split("-")[1] in served_key_types}
    assert wanted, served_key_types
    assert accepted["TLSv1.2"] == wanted
    headers = result.scan_result.http_headers.result
    assert headers is not None
    hsts = headers.strict_transport_security_header
    assert hsts is not None, "no Strict-Transport-Security header"
    assert hsts.max_age == 63072000
    assert hsts.include_subdomains


def test_health_endpoints_answer_200_over_https(address: str, tls_root: Path) -> None:
    # Asked twice: the second answer would be nginx's copy if the first had been cached.
    for path in HEALTH_PATHS:
        for _ in range(2):
            assert health_gate(address, tls_root, path) is None


@pytest.mark.parametrize(
    ("path", "cache_control"),
    [
        ("/api/v1/instance", f"max-age=300, public, {PUBLIC_STALENESS}"),
        ("/about", f"max-age=15, public, {PUBLIC_STALENESS}"),
        ("/health", "max-age=0, private, must-revalidate"),
        ("/api/v1/admin/domain_blocks", "private, no-store"),
    ],
)
def test_application_cache_control_reaches_the_client(
    address: str, tls_root: Path, path: str, cache_control: str
) -> None:
    _, headers, _ = _request(address, tls_root, path)
    assert headers.get("cache-control") == cache_control


def test_api_response_carries_mastodons_security_headers(address: str, tls_root: Path) -> None:
    code, headers, _ = _request(address, tls_root, "/api/v1/instance")
    assert code == 200
    assert {k: headers.get(k) for k in MASTODON_SECURITY_HEADERS} == MASTODON_SECURITY_HEADERS
    assert headers.get("content-security-policy") == API_CSP
    assert headers.get("strict-transport-security") == HSTS


def test_html_page_carries_mastodons_security_headers_and_csp(address: str, tls_root: Path) -> None:
    code, headers, _ = _request(address, tls_root, "/about")
    assert code == 200
    assert headers.get("content-type", "").startswith("text/html")
    assert {k: headers.get(k) for k in MASTODON_SECURITY_HEADERS} == MASTODON_SECURITY_HEADERS
    assert headers.get("strict-transport-security") == HSTS
    policy = headers.get("content-security-policy", "")
    csp = dict(directive.partition(" ")[::2] for directive in policy.split("; "))
    assert csp.get("default-src") == "'none'"
    assert csp.get("frame-ancestors") == "'none'"
    assert csp.get("base-uri") == "'none'"
    assert csp.get("script-src", "").startswith(f"'self' https://{SERVER_NAME}")
    assert f"wss://{SERVER_NAME}" in csp.get("connect-src", "").split()


def test_static_file_carries_upstream_nginx_headers(
    host: Any, address: str, tls_root: Path
) -> None:
    # assets:precompile wrote Vite's manifest and the digested files it names; nginx serves
    # them from public/ without asking puma.
    manifest = json.loads(
        host.file("/home/mastodon/live/public/packs/.vite/manifest.json").content_string
    )
    asset = "/packs/" + next(iter(manifest.values()))["file"]
    code, headers, _ = _request(address, tls_root, asset)
    assert code == 200
    assert headers.get("cache-control") == "public, max-age=2419200, must-revalidate"
    assert headers.get("strict-transport-security") == HSTS
    assert headers.get("x-content-type-options") == "nosniff"
    assert "x-cached" not in headers, "a static file must not go through the proxy"


def test_landing_page_says_it_is_the_stand_in(host: Any, address: str, tls_root: Path) -> None:
    code, headers, body = _request(address, tls_root, "/")
    assert code == 200, body[:300]
    assert headers.get("content-type") == "text/html; charset=utf-8"
    assert "Mastodon stand-in" in body
    assert "It is not Mastodon" in body
    assert MAIN_VARS["instance_settings_title"] in body
    version = OVERRIDES["mastodon_version"].removeprefix("v")
    assert f"Imitating Mastodon {version} on {SERVER_NAME}" in body
    assert "content-security-policy" in headers
    # HEAD to the app itself: the same status and headers, no page (curl -I writes the
    # headers where the body would go).
    out = host.run(
        "curl -sS -I -o /tmp/.site-head -w '%{http_code}' --max-time 30"
        f" -H 'Host: {SERVER_NAME}' -H 'X-Forwarded-Proto: https'"
        f" http://127.0.0.1:{MAIN_VARS['mastodon_web_port']}/"
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "200"
    head = host.file("/tmp/.site-head").content_string
    assert "content-type: text/html; charset=utf-8" in head.lower()
    assert "<html" not in head


def _role_token(host: Any, app_name: str, scopes: str) -> str:
    return role_token(host, MAIN_VARS["instance_settings_owner_username"], app_name, scopes)


def _bearer(tmp_path: Path, token: str) -> tuple[str, str]:
    """curl arguments sending the token from a file (not on the command line)."""
    header = tmp_path / f"auth-{len(list(tmp_path.iterdir()))}"
    header.write_text(f"Authorization: Bearer {token}\n")
    header.chmod(0o600)
    return "-H", f"@{header}"


def test_40_mb_upload_reaches_the_app_with_a_write_media_token(
    host: Any, address: str, tls_root: Path, tmp_path: Path
) -> None:
    token = _role_token(host, "site-test uploads", "write:media")
    upload = tmp_path / "upload.mp4"
    size = 40 * 1024 * 1024
    with upload.open("wb") as handle:
        handle.truncate(size)
    code, body = _curl(
        address,
        tls_root,
        "/api/v2/media",
        *_bearer(tmp_path, token),
        "-F",
        f"file=@{upload};type=video/mp4",
    )
    assert code == 200, body[:300]
    media = json.loads(body)
    assert media["type"] == "video"
    # nginx serves the stored file itself, with upstream's headers for user uploads; its
    # Content-Range names the size the app stored.
    code, headers, _ = _request(address, tls_root, media["url"], "-r", "0-15")
    assert code == 206
    assert headers.get("content-range") == f"bytes 0-15/{size}"
    assert headers.get("content-security-policy") == "default-src 'none'; form-action 'none'"
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("cache-control") == "public, max-age=2419200, immutable"


def test_media_upload_refuses_no_token_a_wrong_scope_and_a_wrong_type(
    host: Any, address: str, tls_root: Path, tmp_path: Path
) -> None:
    image = tmp_path / "tiny.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    as_png = ("-F", f"file=@{image};type=image/png")
    as_binary = ("-F", f"file=@{image};type=application/octet-stream")
    media = _bearer(tmp_path, _role_token(host, "site-test uploads", "write:media"))
    reader = _bearer(tmp_path, _role_token(host, "site-test reader", "read"))
    writer = _bearer(tmp_path, _role_token(host, "site-test writer", "write"))
    cases = [
        # Doorkeeper's answers in Mastodon's Api::BaseController, then the type validation.
        ((*as_png,), 401, {"error": "The access token is invalid"}),
        (("-H", "Authorization: Bearer not-a-token", *as_png), 401, None),
        ((*reader, *as_png), 403, {"error": "This action is outside the authorized scopes"}),
        ((*media, *as_binary), 422, None),
    ]
    for args, status, answer in cases:
        code, body = _curl(address, tls_root, "/api/v2/media", *args)
        assert code == status, (status, body[:300])
        if answer is not None:
            assert json.loads(body) == answer
    code, body = _curl(address, tls_root, "/api/v2/media", *media, *as_binary)
    assert "content type is invalid" in json.loads(body)["error"]
    # write:media itself admits the image; the answer is private API JSON.
    code, headers, body = _request(address, tls_root, "/api/v2/media", *media, *as_png)
    assert code == 200, body[:300]
    assert json.loads(body)["type"] == "image"
    assert headers.get("cache-control") == "private, no-store"
    assert headers.get("content-security-policy") == API_CSP
    # The parent scope `write` covers write:media, on both API versions.
    for version in ("v1", "v2"):
        code, body = _curl(address, tls_root, f"/api/{version}/media", *writer, *as_png)
        assert code == 200, body[:300]
        assert json.loads(body)["type"] == "image"


def _app_request(host: Any, port: int, path: str, *headers: str, method: str = "GET") -> Any:
    """A request straight to a backend port in the container: status, headers, body."""
    args = " ".join(f"-H {shlex.quote(h)}" for h in headers)
    out = host.run(
        f"curl -sS -X {method} -D /tmp/.site-headers -o /tmp/.site-body -w '%{{http_code}}'"
        f" --max-time 30 {args} http://127.0.0.1:{port}{path}"
    )
    assert out.rc == 0, out.stderr
    found: dict[str, str] = {}
    for line in host.file("/tmp/.site-headers").content_string.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return int(out.stdout.strip()), found, host.file("/tmp/.site-body").content_string


def test_app_authorizes_the_host_and_redirects_plain_http_like_mastodon(host: Any) -> None:
    https = "X-Forwarded-Proto: https"
    right = f"Host: {SERVER_NAME}"
    # What nginx sends: the instance's name and the TLS proxy's header.
    code, _, body = _app_request(host, 3000, "/about", right, https)
    assert code == 200, body[:300]
    # LOCAL_DOMAIN is one of Mastodon's config.hosts too.
    local = f"Host: {MAIN_VARS['mastodon_local_domain']}"
    assert _app_request(host, 3000, "/about", local, https)[0] == 200
    # Another host: Rails' host authorization answers 403 with Mastodon's "blocked host" page,
    # whatever else the request says; a bare request to the port sends Host 127.0.0.1:3000.
    for host_header in ("Host: evil.example", None):
        sent = [h for h in (host_header, https) if h]
        code, headers, body = _app_request(host, 3000, "/about", *sent)
        assert code == 403, (host_header, code)
        assert headers.get("content-type") == "text/html; charset=utf-8"
        assert "Blocked host" in body
    # Plain HTTP (no X-Forwarded-Proto: https): config.force_ssl redirects to the same URL
    # over https, 301 for GET and 308 for other methods.
    code, headers, _ = _app_request(host, 3000, "/about?x=1", right)
    assert (code, headers.get("location")) == (301, f"https://{SERVER_NAME}/about?x=1")
    code, headers, _ = _app_request(host, 3000, "/api/v2/media", right, method="POST")
    assert (code, headers.get("location")) == (308, f"https://{SERVER_NAME}/api/v2/media")
    # /health is exempt from both, as upstream excludes it (the role's own health probe):
    # another Host, or none at all, over plain HTTP.
    assert _app_request(host, 3000, "/health", "Host: evil.example")[::2] == (200, "OK")
    assert _app_request(host, 3000, "/health")[::2] == (200, "OK")


def test_nginx_sends_the_host_and_https_the_app_requires(address: str, tls_root: Path) -> None:
    # The same requests the app refuses without the right Host and X-Forwarded-Proto (above)
    # succeed through nginx, which sets both. Query strings never asked before keep nginx's
    # cache (whose key has no host) out of it: these answers come from the app just now.
    unique = time.time_ns()
    for path in (f"/about?nginx-test={unique}", f"/api/v1/instance?nginx-test={unique}"):
        code, headers, body = _request(address, tls_root, path)
        assert code == 200, body[:300]
        assert headers.get("x-cached", "").upper() not in FROM_CACHE, headers.get("x-cached")
    # nginx passes the client's Host on: the app, not nginx, refuses another name.
    path = f"/about?nginx-test={unique}-other-host"
    code, headers, body = _request(address, tls_root, path, "-H", "Host: evil.example")
    assert code == 403, body[:300]
    assert "Blocked host" in body


def _health_codes(host: Any) -> tuple[int, int]:
    web = _app_request(host, 3000, "/health")[0]
    streaming = _app_request(host, 4000, "/api/v1/streaming/health")[0]
    return web, streaming


def _wait_for_health(host: Any, wanted: tuple[int, int] = (200, 200)) -> tuple[int, int]:
    """The health codes once they are `wanted`, or the last ones after about two minutes.

    A stop or start takes effect after systemctl returns (PostgreSQL's cluster unit stops as a
    propagated job), so the codes are asked again until they change or the time is up.
    """
    codes = _health_codes(host)
    for _ in range(60):
        if codes == wanted:
            break
        time.sleep(2)
        codes = _health_codes(host)
    return codes


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        # Web needs the database and Redis; streaming needs Redis only.
        ("redis-server", (500, 503)),
        ("postgresql", (500, 200)),
    ],
)
def test_health_probes_fail_while_a_backing_service_is_stopped(
    host: Any, address: str, tls_root: Path, service: str, expected: tuple[int, int]
) -> None:
    assert _wait_for_health(host) == (200, 200)
    assert host.run(f"systemctl stop {service}").rc == 0
    try:
        assert _wait_for_health(host, expected) == expected
        assert _app_request(host, 3000, "/health")[2] != "OK"
        # The health gate through nginx sees the same answers.
        web_gate = health_gate(address, tls_root, "/health")
        streaming_gate = health_gate(address, tls_root, "/api/v1/streaming/health")
        assert web_gate == f"/health: HTTP {expected[0]}", web_gate
        if expected[1] == 200:
            assert streaming_gate is None, streaming_gate
        else:
            assert streaming_gate == f"/api/v1/streaming/health: HTTP {expected[1]}"
    finally:
        host.run(f"systemctl start {service}")
    assert _wait_for_health(host) == (200, 200), f"health did not recover after {service} came back"


def test_streaming_websocket_through_nginx_receives_an_event_published_in_redis(
    host: Any, container: str, tls_root: Path
) -> None:
    probe = REPO / "tests" / "molecule" / "site-common" / "files" / "streaming_probe.py"
    # /var/tmp, not /tmp: Debian 13 boots with a tmpfs on /tmp, which hides what `docker cp`
    # writes into the container's own /tmp.
    copied = _run(["docker", "cp", str(probe), f"{container}:/var/tmp/site-streaming-probe.py"])
    assert copied.returncode == 0, copied.stderr
    copied = _run(["docker", "cp", str(tls_root), f"{container}:/var/tmp/site-tls-root.pem"])
    assert copied.returncode == 0, copied.stderr
    marker = f"site-test-{time.time_ns()}"
    status = {
        "id": marker,
        "created_at": "2026-01-01T00:00:00.000Z",
        "visibility": "public",
        "language": "en",
        "uri": f"https://{SERVER_NAME}/users/admin/statuses/{marker}",
        "content": f"<p>{marker}</p>",
        "account": {"id": "1", "username": "admin", "acct": "admin"},
    }
    # The shape Mastodon's FanOutOnWriteService publishes on timeline:public.
    message = json.dumps({"event": "update", "payload": status, "queued_at": 1767225600000})
    password = vault_secret("vault_redis_password")

    def run_probe(stream: str, channel: str) -> dict[str, Any]:
        out = host.run(
            f"REDISCLI_AUTH={shlex.quote(password)} timeout 120 python3"
            f" /var/tmp/site-streaming-probe.py {shlex.quote(SERVER_NAME)}"
            " /var/tmp/site-tls-root.pem"
            f" {shlex.quote(stream)} {shlex.quote(channel)} {shlex.quote(message)} 20"
        )
        assert out.rc == 0, out.stderr[-2000:]
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    result = run_probe("public", "timeline:public")
    assert "error" not in result, result
    assert result["receivers"] >= 1
    received = result["received"]
    assert received["stream"] == ["public"]
    assert received["event"] == "update"
    # Mastodon's streaming server sends the payload on as JSON text.
    assert isinstance(received["payload"], str)
    assert json.loads(received["payload"]) == status
    # A message on another timeline's channel never reaches a client of the public stream.
    other = run_probe("public", "timeline:public:local")
    assert other == {"receivers": 0, "error": "the streaming server never subscribed"}, other


def test_health_gate_fails_while_web_is_stopped_behind_a_warm_cache(
    host: Any, address: str, tls_root: Path
) -> None:
    # Warm nginx's cache with everything it may keep, and prove the gate passes now.
    for path in ("/health", "/api/v1/instance", "/about", "/health"):
        _request(address, tls_root, path)
    assert health_gate(address, tls_root, "/health") is None
    # The socket too: systemd would start web again on the next connection to a socket it holds.
    assert host.run("systemctl stop mastodon-web.socket mastodon-web.service").rc == 0
    try:
        # The cache still answers what Mastodon lets it keep ...
        code, headers, _ = _request(address, tls_root, "/api/v1/instance")
        assert (code, headers.get("x-cached")) in {(200, "HIT"), (200, "STALE")}
        # ... but the health gate does not take that answer for a healthy web process.
        failure = health_gate(address, tls_root, "/health")
        assert failure == "/health: HTTP 502", failure
        assert health_gate(address, tls_root, "/api/v1/streaming/health") is None
    finally:
        host.run("systemctl start mastodon-web.socket mastodon-web.service")
        ready = host.run(
            "for i in $(seq 90); do curl -fsS -o /dev/null http://127.0.0.1:3000/health && exit 0;"
            " sleep 1; done; exit 1"
        )
    assert ready.rc == 0, "mastodon-web did not answer /health again after the restart"
    assert health_gate(address, tls_root, "/health") is None


def test_ssh_key_login_works(address: str) -> None:
    key = SCRATCH / "ssh" / "id_ed25519"
    out = _run(
        [
            *_ssh(address),
            "-i",
            str(key),
            "-o",
            "PreferredAuthentications=publickey",
            f"opsadmin@{address}",
            "id",
            "-un",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "opsadmin"


def test_ssh_password_login_is_refused(address: str) -> None:
    out = _run(
        [
            *_ssh(address),
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            f"opsadmin@{address}",
            "true",
        ]
    )
    assert out.returncode == 255
    # The server offers public keys only: no password prompt exists to answer.
    assert "Permission denied (publickey)" in out.stderr, out.stderr


def _ssh(address: str) -> list[str]:
    """ssh options for a non-interactive login attempt to a throw-away container."""
    assert address
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
    ]


# --- secrets and state on the controller --------------------------------------------------


def _vault_values() -> list[str]:
    return [str(v) for v in vault().values() if v not in (None, "")]


def test_verbose_ansible_output_contains_no_secret() -> None:
    log = SCRATCH / "ansible-v.log"
    text = log.read_text(errors="replace")
    # The log must really hold the -v converge of the roles that handle secrets.
    assert "Create the Mastodon database role" in text
    assert "Write the Redis configuration" in text
    secrets = _vault_values()
    assert len(secrets) >= 8
    leaked = [f"{s[:3]}…({len(s)} chars)" for s in secrets if s in text]
    assert not leaked, f"secret values in the -v output: {leaked}"


def test_last_deploy_is_recorded_on_the_controller() -> None:
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    state = yaml.safe_load((inventory / "state" / "last-deploy.yml").read_text())
    overrides = yaml.safe_load(
        (SCENARIO_DIR.parent / "site-common" / "test-overrides.yml").read_text()
    )
    assert state["mastodon_version"] == overrides["mastodon_version"]
    assert time.strptime(state["at"], "%Y-%m-%dT%H:%M:%SZ")
