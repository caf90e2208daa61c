"""What a person would check by hand after roles/mastodon deployed the stand-in.

Runs inside the container through testinfra (molecule verify).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

LIVE = "/home/mastodon/live"
BUNDLE = "/usr/bin/bundle"
AR_KEYS = (
    "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
    "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
    "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
)


def vault_secret(name: str) -> str:
    """A secret the scenario generated for the role (tests/molecule/standin/vars/main.yml)."""
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name
    return path.read_text().split()[0]


def as_mastodon(host, command: str, env: str = "", timeout: int = 120):
    """Run a shell command as the mastodon user in the checkout, RAILS_ENV=production."""
    inner = f"cd {LIVE} && {env} RAILS_ENV=production timeout {timeout} {command}"
    return host.run(f"runuser -u mastodon -- bash -c {shlex.quote(inner)}")


def rails_runner(host, code: str, env: str = ""):
    return as_mastodon(host, f"{BUNDLE} exec bin/rails runner {shlex.quote(code)}", env=env)


# What nginx adds to every request it passes to the web process (roles/nginx): without them
# Mastodon in production answers 403 (another host) or redirects to https.
PROXIED = ("-H", "Host: standin.test", "-H", "X-Forwarded-Proto: https")


def http_get(host, url: str, *curl_args: str, proxied: bool = True):
    args = " ".join(shlex.quote(a) for a in (*(PROXIED if proxied else ()), *curl_args))
    out = host.run(
        f"curl -sS -o /tmp/.body -w '%{{http_code}}' --max-time 20 {args} {shlex.quote(url)}"
    )
    return out.stdout.strip(), host.file("/tmp/.body").content_string


def http_headers(host, url: str, *curl_args: str, proxied: bool = True):
    """Status, response headers (lower-case names) and body of one request."""
    args = " ".join(shlex.quote(a) for a in (*(PROXIED if proxied else ()), *curl_args))
    out = host.run(
        f"curl -sS -D /tmp/.headers -o /tmp/.body -w '%{{http_code}}' --max-time 30 {args} "
        f"{shlex.quote(url)}"
    )
    headers = {}
    for line in host.file("/tmp/.headers").content_string.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return out.stdout.strip(), headers, host.file("/tmp/.body").content_string


# What Mastodon sends, and the upstream file each value comes from (tests/standin/README.md).
PRIVATE = "private, no-store"  # application_controller.rb set_cache_control_defaults
PUBLIC_INSTANCE = "max-age=300, public, stale-while-revalidate=30, stale-if-error=86400"
PUBLIC_PAGE = "max-age=15, public, stale-while-revalidate=30, stale-if-error=86400"
HEALTH = "max-age=0, private, must-revalidate"  # health_controller.rb + Rack::ETag
SECURITY = {  # config/environments/production.rb default_headers
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "x-xss-protection": "0",
    "referrer-policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'; form-action 'none'"
ENDPOINTS = [
    # path, status, Cache-Control, CSP kind
    ("/health", "200", HEALTH, "web"),
    ("/api/v1/instance", "200", PUBLIC_INSTANCE, "api"),
    ("/api/v2/instance", "200", PUBLIC_INSTANCE, "api"),
    ("/api/v1/instance/rules", "200", PUBLIC_INSTANCE, "api"),
    ("/", "200", PUBLIC_PAGE, "web"),
    ("/about", "200", PUBLIC_PAGE, "web"),
    ("/privacy-policy", "200", PUBLIC_PAGE, "web"),
    ("/api/v1/admin/domain_blocks", "401", PRIVATE, "api"),
    ("/api/v1/admin/domain_allows", "401", PRIVATE, "api"),
    ("/no/such/page", "404", PRIVATE, "web"),
    ("/api/v1/no/such/endpoint", "404", PRIVATE, "api"),
]


def test_the_checkout_is_the_labelled_stand_in(host):
    assert host.file(f"{LIVE}/STANDIN-NOT-MASTODON").exists
    assert as_mastodon(host, "bin/tootctl --version").stdout.strip() == "4.5.1"


@pytest.mark.parametrize(
    "unit",
    ["mastodon-web", "mastodon-sidekiq", "mastodon-streaming", "mastodon-streaming@4000"],
)
def test_units_are_enabled_and_active(host, unit):
    service = host.service(unit)
    assert service.is_enabled
    assert service.is_running or unit == "mastodon-streaming"
    assert host.run(f"systemctl is-active {unit}").stdout.strip() == "active"


@pytest.mark.parametrize("unit", ["mastodon-web", "mastodon-sidekiq", "mastodon-streaming@4000"])
def test_units_keep_their_sandbox(host, unit):
    # No test-only relaxation: the units run with the role's sandbox, PrivateUsers included.
    props = host.run(
        f"systemctl show {unit} -p NoNewPrivileges -p ProtectSystem -p User "
        "-p CapabilityBoundingSet -p PrivateUsers -p DropInPaths"
    ).stdout
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "User=mastodon" in props
    assert "CapabilityBoundingSet=\n" in props + "\n"
    assert "PrivateUsers=yes" in props
    assert "DropInPaths=\n" in props + "\n", props


@pytest.mark.parametrize("port", [3000, 4000])
def test_ports_listen_on_loopback_only(host, port):
    listeners = [
        line.split()[3]
        for line in host.run("ss -Hltn").stdout.splitlines()
        if line.split()[3].rsplit(":", 1)[-1] == str(port)
    ]
    assert listeners, f"nothing listens on {port}"
    assert all(addr.startswith("127.0.0.1:") for addr in listeners), listeners


def test_web_health_is_ok(host):
    assert http_get(host, "http://127.0.0.1:3000/health") == ("200", "OK")


def test_streaming_health_is_ok(host):
    assert http_get(host, "http://127.0.0.1:4000/api/v1/streaming/health") == ("200", "OK")


@pytest.mark.parametrize(("path", "status", "cache_control", "csp"), ENDPOINTS)
def test_web_sends_mastodons_cache_control_and_security_headers(
    host, path, status, cache_control, csp
):
    code, headers, _ = http_headers(host, f"http://127.0.0.1:3000{path}")
    assert code == status
    assert headers.get("cache-control") == cache_control
    assert {name: headers.get(name) for name in SECURITY} == SECURITY
    policy = headers.get("content-security-policy", "")
    if csp == "api":
        assert policy == API_CSP
    else:
        directives = dict(d.partition(" ")[::2] for d in policy.split("; "))
        assert directives.get("default-src") == "'none'"
        assert directives.get("frame-ancestors") == "'none'"
        assert directives.get("script-src", "").startswith("'self' https://standin.test")
        assert "'nonce-" in directives.get("style-src", "")


def test_public_pages_vary_like_mastodons_web_app(host):
    _, page, _ = http_headers(host, "http://127.0.0.1:3000/about")
    _, api, _ = http_headers(host, "http://127.0.0.1:3000/api/v1/admin/domain_blocks")
    _, instance, _ = http_headers(host, "http://127.0.0.1:3000/api/v2/instance")
    assert page.get("vary") == "Accept, Accept-Language, Cookie"
    assert api.get("vary") == "Authorization"
    assert "vary" not in instance


def role_token(host, app_name: str, scopes: str) -> str:
    """A token of the owner, made by roles/instance_settings/files/token.rb (as the role does)."""
    script = Path(__file__).resolve().parents[4] / "roles/instance_settings/files/token.rb"
    copy = f"cat > /tmp/.token.rb <<'STANDIN_TOKEN_RB'\n{script.read_text()}STANDIN_TOKEN_RB"
    assert host.run(f"{copy}\nchmod 0644 /tmp/.token.rb").rc == 0
    data = json.dumps({"dry_run": False, "owner": "owner", "app_name": app_name, "scopes": scopes})
    assert host.run(f"echo {shlex.quote(data)} > /tmp/.token.json").rc == 0
    out = as_mastodon(host, f"{BUNDLE} exec bin/rails runner /tmp/.token.rb < /tmp/.token.json")
    assert out.rc == 0, f"token.rb failed (exit {out.rc})"
    line = next(x for x in out.stdout.splitlines() if x.startswith("INSTANCE_SETTINGS_RESULT "))
    return json.loads(line.split(" ", 1)[1])["token"]


def test_media_upload_needs_a_write_media_token_and_a_media_type(host):
    host.run("head -c 2048 /dev/urandom > /tmp/.upload")
    media = ("-H", f"Authorization: Bearer {role_token(host, 'verify uploads', 'write:media')}")
    reader = ("-H", f"Authorization: Bearer {role_token(host, 'verify reader', 'read')}")
    url = "http://127.0.0.1:3000/api/v2/media"
    png = ("-F", "file=@/tmp/.upload;type=image/png")
    binary = ("-F", "file=@/tmp/.upload;type=application/octet-stream")
    code, headers, body = http_headers(host, url, *media, *png)
    assert code == "200", body[:300]
    assert json.loads(body)["type"] == "image"
    assert headers.get("cache-control") == PRIVATE
    assert headers.get("content-security-policy") == API_CSP
    # Mastodon's answers: Doorkeeper's 401/403 in Api::BaseController, then the type validation.
    code, _, body = http_headers(host, url, *png)
    assert (code, json.loads(body)) == ("401", {"error": "The access token is invalid"})
    code, _, body = http_headers(host, url, *reader, *png)
    assert code == "403"
    assert json.loads(body) == {"error": "This action is outside the authorized scopes"}
    code, _, body = http_headers(host, url, *media, *binary)
    assert code == "422"
    assert "content type is invalid" in json.loads(body)["error"]


def test_web_authorizes_the_host_and_forces_https_like_mastodon(host):
    https = ("-H", "X-Forwarded-Proto: https")
    url = "http://127.0.0.1:3000/about?x=1"
    # config.hosts: LOCAL_DOMAIN (and WEB_DOMAIN, ALTERNATE_DOMAINS); any other Host is refused.
    assert http_headers(host, url, "-H", "Host: standin.test", *https, proxied=False)[0] == "200"
    for other in (("-H", "Host: other.test"), ()):
        code, headers, body = http_headers(host, url, *other, *https, proxied=False)
        assert code == "403", other
        assert headers.get("content-type") == "text/html; charset=utf-8"
        assert "Blocked host" in body
    # config.force_ssl: plain HTTP is redirected (301 for GET, 308 for other methods).
    code, headers, _ = http_headers(host, url, "-H", "Host: standin.test", proxied=False)
    assert (code, headers.get("location")) == ("301", "https://standin.test/about?x=1")
    code, headers, _ = http_headers(
        host,
        "http://127.0.0.1:3000/api/v2/media",
        "-X",
        "POST",
        "-H",
        "Host: standin.test",
        proxied=False,
    )
    assert (code, headers.get("location")) == ("308", "https://standin.test/api/v2/media")
    # /health is exempt from both.
    assert http_get(host, "http://127.0.0.1:3000/health", proxied=False) == ("200", "OK")


def health_codes(host):
    web = http_get(host, "http://127.0.0.1:3000/health", proxied=False)[0]
    streaming = http_get(host, "http://127.0.0.1:4000/api/v1/streaming/health", proxied=False)[0]
    return web, streaming


def wait_for_health(host, wanted=("200", "200")):
    """The codes once they are `wanted` (a stop takes effect after systemctl returns)."""
    for _ in range(60):
        codes = health_codes(host)
        if codes == wanted:
            return codes
        time.sleep(2)
    return codes


@pytest.mark.parametrize(
    ("service", "expected"),
    # Web needs PostgreSQL and Redis (Mastodon's health check); streaming needs Redis.
    [("redis-server", ("500", "503")), ("postgresql", ("500", "200"))],
)
def test_health_follows_redis_and_postgresql(host, service, expected):
    assert wait_for_health(host) == ("200", "200")
    assert host.run(f"systemctl stop {service}").rc == 0
    try:
        assert wait_for_health(host, expected) == expected
        assert http_get(host, "http://127.0.0.1:3000/health", proxied=False)[1] != "OK"
    finally:
        host.run(f"systemctl start {service}")
    assert wait_for_health(host) == ("200", "200"), f"no recovery after {service} came back"


def test_streaming_health_sends_no_cache_control_like_upstream(host):
    code, headers, body = http_headers(host, "http://127.0.0.1:4000/api/v1/streaming/health")
    assert (code, body) == ("200", "OK")
    assert headers.get("content-type") == "text/plain"
    assert "cache-control" not in headers


def test_landing_page_says_what_it_is(host):
    code, headers, body = http_headers(host, "http://127.0.0.1:3000/")
    assert code == "200"
    assert headers.get("content-type") == "text/html; charset=utf-8"
    assert "Mastodon stand-in" in body
    assert "It is not Mastodon" in body
    assert "Imitating Mastodon 4.5.1 on standin.test" in body
    # HEAD: the same status and headers, no page (curl -I writes the headers where the body goes).
    head_code, head_headers, head_output = http_headers(host, "http://127.0.0.1:3000/", "-I")
    assert head_code == "200"
    assert head_headers.get("content-type") == "text/html; charset=utf-8"
    assert "<html" not in head_output


def test_instance_api_reports_the_deployed_version(host):
    code, body = http_get(host, "http://127.0.0.1:3000/api/v2/instance")
    assert code == "200"
    data = json.loads(body)
    assert data["version"] == "4.5.1"
    assert data["domain"] == "standin.test"


def test_env_file_is_private_to_mastodon(host):
    env = host.file(f"{LIVE}/.env.production")
    assert env.user == "mastodon"
    assert env.group == "mastodon"
    assert env.mode == 0o600
    content = env.content_string
    assert "LOCAL_DOMAIN=standin.test" in content
    assert "IP_RETENTION_PERIOD=604800" in content
    assert "SESSION_RETENTION_PERIOD=2592000" in content
    assert "EMAIL_DOMAIN_ALLOWLIST='standin.test|example.edu'" in content
    assert "SMTP_FROM_ADDRESS='Standin Social <notifications@standin.test>'" in content
    assert "DB_HOST=/var/run/postgresql" in content
    assert "DB_PASS" not in content
    names = {line.split("=", 1)[0] for line in content.splitlines() if "=" in line}
    assert not names & {"RAILS_ENV", "PORT", "BIND", "NODE_ENV"}, "these belong in the units"


def test_home_is_traversable_for_nginx(host):
    assert host.file("/home/mastodon").mode & 0o001


def test_schema_includes_post_deployment_migrations(host):
    out = rails_runner(
        host,
        "puts ActiveRecord::Base.connection"
        ".select_values('SELECT version FROM schema_migrations').max",
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "20251001000100"


def test_owner_exists_with_owner_role_and_vault_password(host):
    out = rails_runner(
        host,
        "u = Account.find_local('owner').user; "
        "puts [u.role.name, u.approved, !u.confirmed_at.nil?, u.email].join(',')",
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "Owner,true,true,owner@standin.test"
    # The vault's password signs the owner in; any other does not. Passed through the
    # environment, never on a command line.
    check = "print Account.find_local('owner').user.valid_password?(ENV.fetch('CANDIDATE'))"
    right = rails_runner(host, check, env=f"CANDIDATE={shlex.quote(vault_secret('owner'))}")
    assert right.rc == 0, right.stderr
    assert right.stdout.strip() == "true"
    wrong = rails_runner(host, check, env="CANDIDATE=not-the-owner-password")
    assert wrong.stdout.strip() == "false"


def test_sidekiq_processes_a_job_enqueued_by_the_web(host):
    marker = f"verify-{int(time.time())}"
    out = host.run(
        "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' "
        "-H 'Host: standin.test' -H 'X-Forwarded-Proto: https' "
        f'-d \'{{"marker":"{marker}"}}\' http://127.0.0.1:3000/api/v1/standin/jobs'
    )
    assert out.stdout.strip() == "202"
    for _ in range(30):
        count = rails_runner(host, f"print StandinJobRun.where(marker: '{marker}').count")
        if count.stdout.strip() == "1":
            return
        time.sleep(2)
    pytest.fail("sidekiq did not process the job within 60 s")


@pytest.mark.parametrize("missing", AR_KEYS)
def test_web_refuses_to_boot_without_an_encryption_key(host, missing):
    copy = f"/tmp/live-without-{missing.lower()}"
    prep = host.run(
        f"rm -rf {copy} && cp -a {LIVE} {copy} && sed -i '/^{missing}=/d' {copy}/.env.production "
        f"&& chown -R mastodon:mastodon {copy}"
    )
    assert prep.rc == 0, prep.stderr
    inner = (
        f"cd {copy} && RAILS_ENV=production PORT=3999 timeout 60 "
        f"{BUNDLE} exec puma -C config/puma.rb"
    )
    out = host.run(f"runuser -u mastodon -- bash -c {shlex.quote(inner)}")
    host.run(f"rm -rf {copy}")
    assert out.rc not in (0, 124), "puma kept running without the key"
    assert missing in out.stdout + out.stderr


def _stored_canary_secret(host) -> dict:
    """The canary's ciphertext as PostgreSQL holds it, read past the app."""
    sql = (
        "SELECT u.otp_secret FROM users u JOIN accounts a ON a.id = u.account_id "
        "WHERE a.username = 'canary' AND a.domain IS NULL"
    )
    out = host.run(f"runuser -u postgres -- psql -d mastodon_production -Atc {shlex.quote(sql)}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout.strip())


def _decrypt(stored: dict, primary_key: str, salt: str) -> bytes:
    """The stand-in's cipher (AES-256-GCM, key PBKDF2-HMAC-SHA256 from the primary key and the
    key-derivation salt), written again here so the test does not trust the app to decrypt."""
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt.encode(), 2**16).derive(primary_key.encode())
    tag = base64.b64decode(stored["h"]["at"])
    payload = base64.b64decode(stored["p"])
    return AESGCM(key).decrypt(base64.b64decode(stored["h"]["iv"]), payload + tag, b"")


def test_two_factor_canary_decrypts_only_with_the_right_key(host):
    # Written through the deployed app with the deployed .env.production ...
    setup = rails_runner(
        host,
        "a = Account.find_local('canary') || Account.create!(username: 'canary'); "
        "u = a.user || User.new(account: a, email: 'canary@standin.test', "
        "password: 'canary-pass-1'); "
        "u.otp_secret = 'CANARYOTPSECRET'; u.otp_required_for_login = true; u.save!",
    )
    assert setup.rc == 0, setup.stderr
    right = rails_runner(host, "print Account.find_local('canary').user.otp_secret")
    assert right.rc == 0, right.stderr
    assert right.stdout.strip() == "CANARYOTPSECRET"
    # ... the stored ciphertext opens with the vault's keys, and with no other.
    stored = _stored_canary_secret(host)
    assert "CANARYOTPSECRET" not in json.dumps(stored)
    assert _decrypt(stored, vault_secret("ar_primary"), vault_secret("ar_salt")) == (
        b"CANARYOTPSECRET"
    )
    with pytest.raises(InvalidTag):
        _decrypt(stored, "aWrongPrimaryKeyOfThirtyTwoChars", vault_secret("ar_salt"))
    wrong = rails_runner(
        host,
        "print Account.find_local('canary').user.otp_secret",
        env="ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY=aWrongPrimaryKeyOfThirtyTwoChars",
    )
    assert wrong.rc != 0
    assert "CANARYOTPSECRET" not in wrong.stdout
    assert "Decryption" in wrong.stderr


def test_the_deployed_web_unit_refuses_to_start_without_an_encryption_key(host):
    env_file = f"{LIVE}/.env.production"
    key = "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"
    saved = host.run(f"cp -a {env_file} /root/env.production.saved")
    assert saved.rc == 0, saved.stderr
    try:
        assert host.run(f"sed -i '/^{key}=/d' {env_file}").rc == 0
        since = host.check_output("date +'%Y-%m-%d %H:%M:%S'")
        host.run("systemctl restart mastodon-web")
        answered = []
        for _ in range(10):  # bounded: about 20 s
            time.sleep(2)
            answered.append(http_get(host, "http://127.0.0.1:3000/health")[0])
        assert "200" not in answered, "mastodon-web served without its encryption key"
        journal = host.run(f"journalctl -u mastodon-web --since {shlex.quote(since)} --no-pager")
        assert key in journal.stdout, journal.stdout[-2000:]
    finally:
        host.run(f"cp -a /root/env.production.saved {env_file} && rm -f /root/env.production.saved")
        host.run("systemctl reset-failed mastodon-web; systemctl restart mastodon-web")
    for _ in range(40):  # bounded: the host is left serving again
        if http_get(host, "http://127.0.0.1:3000/health")[0] == "200":
            return
        time.sleep(2)
    pytest.fail("mastodon-web did not come back after the key was restored")


def test_maintenance_timers_are_active(host):
    for timer in ("mastodon-media-remove.timer", "mastodon-preview-cards-remove.timer"):
        assert host.run(f"systemctl is-active {timer}").stdout.strip() == "active"
    # What systemd loaded, not the file: a unit file changed without daemon-reload would differ.
    unit = "mastodon-preview-cards-remove.service"
    loaded = host.check_output(f"systemctl show -p ExecStart {unit}")
    assert "preview_cards remove --days 30 " in loaded, loaded
    assert host.check_output(f"systemctl show -p NeedDaemonReload --value {unit}") == "no"


def test_media_cleanup_service_runs(host):
    out = host.run("systemctl start mastodon-media-remove.service")
    assert out.rc == 0, out.stderr
    result = host.run("systemctl show mastodon-media-remove.service -p Result").stdout.strip()
    assert result == "Result=success"


def test_web_reload_keeps_serving(host):
    assert host.run("systemctl reload mastodon-web").rc == 0
    for _ in range(20):
        if http_get(host, "http://127.0.0.1:3000/health")[0] == "200":
            return
        time.sleep(2)
    pytest.fail("web did not answer /health after a reload")
