"""What a person would check by hand in the Mastodon app `playbooks/site.yml` deployed.

Shared by the site-debian12 and site-debian13 scenarios (molecule verify, testinfra), with the
example institution's inventory and vault and the Mastodon STAND-IN behind nginx. These checks
ask the app itself on its loopback ports (what nginx forwards is in test_site.py), its units,
its database and its `.env.production`. They came from the former `standin` scenario, which ran
the mastodon role alone.

pytest runs this file after test_hardening.py, test_mastodon_state.py and test_site.py
(molecule sorts the paths). The tests that stop or break something restore it and wait, bounded,
until the app answers again; they are last in this file.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from site_vault import vault_secret

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
MAIN_VARS = yaml.safe_load(
    (REPO / "inventories" / "example" / "group_vars" / "all" / "main.yml").read_text()
)
OVERRIDES = yaml.safe_load((REPO / "tests/molecule/site-common/test-overrides.yml").read_text())
SERVER_NAME: str = MAIN_VARS["nginx_server_name"]
LOCAL_DOMAIN: str = MAIN_VARS["mastodon_local_domain"]
DATABASE: str = MAIN_VARS["mastodon_db_name"]
OWNER: str = MAIN_VARS["mastodon_owner_username"]
VERSION: str = OVERRIDES["mastodon_version"].removeprefix("v")
WEB_PORT: int = MAIN_VARS["mastodon_web_port"]
STREAMING_PORTS: list[int] = MAIN_VARS["mastodon_streaming_ports"]
WEB = f"http://127.0.0.1:{WEB_PORT}"
STREAMING_HEALTH = f"http://127.0.0.1:{STREAMING_PORTS[0]}/api/v1/streaming/health"
LIVE = "/home/mastodon/live"
BUNDLE = "/usr/bin/bundle"  # Debian's Ruby (test-overrides.yml: mastodon_ruby_install_method)
AR_KEYS = (
    "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
    "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
    "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
)
# What nginx adds to every request it passes to the web process (roles/nginx): without them
# Mastodon in production answers 403 (another host) or redirects to https.
PROXIED = ("-H", f"Host: {SERVER_NAME}", "-H", "X-Forwarded-Proto: https")
# The newest post-deployment migration of the stand-in's release (tests/standin/app/db/).
NEWEST_MIGRATION = "20251001000100"


def as_mastodon(host: Any, command: str, env: str = "", timeout: int = 120) -> Any:
    """Run a shell command as the mastodon user in the checkout, RAILS_ENV=production."""
    inner = f"cd {LIVE} && {env} RAILS_ENV=production timeout {timeout} {command}"
    return host.run(f"runuser -u mastodon -- bash -c {shlex.quote(inner)}")


def rails_runner(host: Any, code: str, env: str = "") -> Any:
    return as_mastodon(host, f"{BUNDLE} exec bin/rails runner {shlex.quote(code)}", env=env)


def http_headers(
    host: Any, url: str, *curl_args: str, proxied: bool = True
) -> tuple[str, dict[str, str], str]:
    """Status, response headers (lower-case names) and body of one request in the container."""
    args = " ".join(shlex.quote(a) for a in (*(PROXIED if proxied else ()), *curl_args))
    out = host.run(
        "curl -sS -D /tmp/.standin-headers -o /tmp/.standin-body -w '%{http_code}'"
        f" --max-time 30 {args} {shlex.quote(url)}"
    )
    headers = {}
    for line in host.file("/tmp/.standin-headers").content_string.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return out.stdout.strip(), headers, host.file("/tmp/.standin-body").content_string


def http_get(host: Any, url: str, *curl_args: str, proxied: bool = True) -> tuple[str, str]:
    code, _, body = http_headers(host, url, *curl_args, proxied=proxied)
    return code, body


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
STREAMING_UNITS = [f"mastodon-streaming@{port}" for port in STREAMING_PORTS]


# --- the checkout and the units -------------------------------------------------------------


def test_the_checkout_is_the_labelled_stand_in(host: Any) -> None:
    assert host.file(f"{LIVE}/STANDIN-NOT-MASTODON").exists
    assert as_mastodon(host, "bin/tootctl --version").stdout.strip() == VERSION


@pytest.mark.parametrize(
    "unit", ["mastodon-web", "mastodon-sidekiq", "mastodon-streaming", *STREAMING_UNITS]
)
def test_units_are_enabled_and_active(host: Any, unit: str) -> None:
    service = host.service(unit)
    assert service.is_enabled
    # mastodon-streaming is the oneshot shim that pulls in one instance per port.
    assert service.is_running or unit == "mastodon-streaming"
    assert host.run(f"systemctl is-active {unit}").stdout.strip() == "active"


@pytest.mark.parametrize("unit", ["mastodon-web", "mastodon-sidekiq", *STREAMING_UNITS])
def test_units_keep_their_sandbox(host: Any, unit: str) -> None:
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


def test_home_is_traversable_for_nginx(host: Any) -> None:
    assert host.file("/home/mastodon").mode & 0o001


def test_maintenance_timers_are_active(host: Any) -> None:
    for timer in ("mastodon-media-remove.timer", "mastodon-preview-cards-remove.timer"):
        assert host.run(f"systemctl is-active {timer}").stdout.strip() == "active"
    # What systemd loaded, not the file: a unit file changed without daemon-reload would differ.
    unit = "mastodon-preview-cards-remove.service"
    loaded = host.check_output(f"systemctl show -p ExecStart {unit}")
    days = MAIN_VARS["mastodon_preview_card_retention_days"]
    assert f"preview_cards remove --days {days} " in loaded, loaded
    assert host.check_output(f"systemctl show -p NeedDaemonReload --value {unit}") == "no"


# --- the app on its loopback ports ----------------------------------------------------------


def test_web_health_is_ok(host: Any) -> None:
    assert http_get(host, f"{WEB}/health") == ("200", "OK")


@pytest.mark.parametrize("port", STREAMING_PORTS)
def test_streaming_health_is_ok(host: Any, port: int) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/streaming/health"
    assert http_get(host, url) == ("200", "OK")


def test_streaming_health_sends_no_cache_control_like_upstream(host: Any) -> None:
    code, headers, body = http_headers(host, STREAMING_HEALTH)
    assert (code, body) == ("200", "OK")
    assert headers.get("content-type") == "text/plain"
    assert "cache-control" not in headers


@pytest.mark.parametrize(("path", "status", "cache_control", "csp"), ENDPOINTS)
def test_web_sends_mastodons_cache_control_and_security_headers(
    host: Any, path: str, status: str, cache_control: str, csp: str
) -> None:
    code, headers, _ = http_headers(host, f"{WEB}{path}")
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
        assert directives.get("script-src", "").startswith(f"'self' https://{SERVER_NAME}")
        assert "'nonce-" in directives.get("style-src", "")


def test_public_pages_vary_like_mastodons_web_app(host: Any) -> None:
    _, page, _ = http_headers(host, f"{WEB}/about")
    _, api, _ = http_headers(host, f"{WEB}/api/v1/admin/domain_blocks")
    _, instance, _ = http_headers(host, f"{WEB}/api/v2/instance")
    assert page.get("vary") == "Accept, Accept-Language, Cookie"
    assert api.get("vary") == "Authorization"
    assert "vary" not in instance


def test_instance_api_reports_the_deployed_version(host: Any) -> None:
    code, body = http_get(host, f"{WEB}/api/v2/instance")
    assert code == "200"
    data = json.loads(body)
    assert data["version"] == VERSION
    # InstancePresenter#domain: the accounts' domain, not the web domain nginx serves.
    assert data["domain"] == LOCAL_DOMAIN
    assert data["configuration"]["urls"]["streaming"] == f"wss://{SERVER_NAME}"


# --- the database the role migrated and seeded ----------------------------------------------


def test_schema_includes_post_deployment_migrations(host: Any) -> None:
    out = rails_runner(
        host,
        "puts ActiveRecord::Base.connection"
        ".select_values('SELECT version FROM schema_migrations').max",
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == NEWEST_MIGRATION


def test_owner_exists_with_owner_role_and_vault_password(host: Any) -> None:
    out = rails_runner(
        host,
        f"u = Account.find_local('{OWNER}').user; "
        "puts [u.role.name, u.approved, !u.confirmed_at.nil?, u.email].join(',')",
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == f"Owner,true,true,{MAIN_VARS['mastodon_owner_email']}"
    # The vault's password signs the owner in; any other does not. Handed to Rails in the
    # environment, never in the Ruby code or an assertion message.
    check = f"print Account.find_local('{OWNER}').user.valid_password?(ENV.fetch('CANDIDATE'))"
    password = vault_secret("vault_mastodon_owner_password")
    right = rails_runner(host, check, env=f"CANDIDATE={shlex.quote(password)}")
    assert right.rc == 0, right.stderr
    assert right.stdout.strip() == "true"
    wrong = rails_runner(host, check, env="CANDIDATE=not-the-owner-password")
    assert wrong.rc == 0, wrong.stderr
    assert wrong.stdout.strip() == "false"


def test_sidekiq_processes_a_job_enqueued_by_the_web(host: Any) -> None:
    marker = f"verify-{time.time_ns()}"
    code, _ = http_get(
        host,
        f"{WEB}/api/v1/standin/jobs",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"marker": marker}),
    )
    assert code == "202"
    for _ in range(30):  # bounded: about 60 s
        count = rails_runner(host, f"print StandinJobRun.where(marker: '{marker}').count")
        if count.stdout.strip() == "1":
            return
        time.sleep(2)
    pytest.fail("sidekiq did not process the job within 60 s")


def _stored_canary_secret(host: Any) -> dict[str, Any]:
    """The canary's ciphertext as PostgreSQL holds it, read past the app."""
    sql = (
        "SELECT u.otp_secret FROM users u JOIN accounts a ON a.id = u.account_id "
        "WHERE a.username = 'canary' AND a.domain IS NULL"
    )
    out = host.run(f"runuser -u postgres -- psql -d {DATABASE} -XAtc {shlex.quote(sql)}")
    assert out.rc == 0, out.stderr
    stored: dict[str, Any] = json.loads(out.stdout.strip())
    return stored


def _decrypt(stored: dict[str, Any], primary_key: str, salt: str) -> bytes:
    """The stand-in's cipher (AES-256-GCM, key PBKDF2-HMAC-SHA256 from the primary key and the
    key-derivation salt), written again here so the test does not trust the app to decrypt."""
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt.encode(), 2**16).derive(primary_key.encode())
    tag = base64.b64decode(stored["h"]["at"])
    payload = base64.b64decode(stored["p"])
    return AESGCM(key).decrypt(base64.b64decode(stored["h"]["iv"]), payload + tag, b"")


def test_two_factor_canary_decrypts_only_with_the_right_key(host: Any) -> None:
    # Written through the deployed app with the deployed .env.production ...
    setup = rails_runner(
        host,
        "a = Account.find_local('canary') || Account.create!(username: 'canary'); "
        f"u = a.user || User.new(account: a, email: 'canary@{LOCAL_DOMAIN}', "
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
    primary = vault_secret("vault_mastodon_active_record_encryption_primary_key")
    salt = vault_secret("vault_mastodon_active_record_encryption_key_derivation_salt")
    opened = _decrypt(stored, primary, salt)  # outside the assert: pytest would print the keys
    assert opened == b"CANARYOTPSECRET"
    with pytest.raises(InvalidTag):
        _decrypt(stored, "aWrongPrimaryKeyOfThirtyTwoChars", salt)
    wrong = rails_runner(
        host,
        "print Account.find_local('canary').user.otp_secret",
        env="ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY=aWrongPrimaryKeyOfThirtyTwoChars",
    )
    assert wrong.rc != 0
    assert "CANARYOTPSECRET" not in wrong.stdout
    assert "Decryption" in wrong.stderr


# --- what the app refuses, and units stopped, broken and restored (last) --------------------


@pytest.mark.parametrize("missing", AR_KEYS)
def test_web_refuses_to_boot_without_an_encryption_key(host: Any, missing: str) -> None:
    # A copy of the checkout (uploaded media left out) with one key removed from its
    # .env.production, started on a port nothing else uses; the deployed app is not touched.
    copy = f"/var/tmp/live-without-{missing.lower()}"
    prep = host.run(
        f"rm -rf {copy} && mkdir {copy} && tar -C {LIVE} --exclude=./public/system -cf - . "
        f"| tar -C {copy} -xf - && sed -i '/^{missing}=/d' {copy}/.env.production "
        f"&& chown -R mastodon:mastodon {copy}"
    )
    assert prep.rc == 0, prep.stderr
    try:
        assert host.run(f"grep -c '^{missing}=' {LIVE}/.env.production").stdout.strip() == "1"
        assert host.run(f"grep -c '^{missing}=' {copy}/.env.production").stdout.strip() == "0"
        inner = (
            f"cd {copy} && RAILS_ENV=production PORT=3999 BIND=127.0.0.1 timeout 60 "
            f"{BUNDLE} exec puma -C config/puma.rb"
        )
        out = host.run(f"runuser -u mastodon -- bash -c {shlex.quote(inner)}")
    finally:
        host.run(f"rm -rf {copy}")
    assert out.rc not in (0, 124), "puma kept running without the key"
    assert missing in out.stdout + out.stderr


def test_media_cleanup_service_runs(host: Any) -> None:
    out = host.run("systemctl start mastodon-media-remove.service")
    assert out.rc == 0, out.stderr
    result = host.run("systemctl show mastodon-media-remove.service -p Result").stdout.strip()
    assert result == "Result=success"


def _wait_for_web_health(host: Any, tries: int = 45) -> bool:
    """True once puma answers /health with 200 (bounded: about 2 s per try)."""
    for _ in range(tries):
        if http_get(host, f"{WEB}/health")[0] == "200":
            return True
        time.sleep(2)
    return False


def test_web_reload_keeps_serving(host: Any) -> None:
    assert host.run("systemctl reload mastodon-web").rc == 0
    assert _wait_for_web_health(host), "web did not answer /health after a reload"


def test_the_deployed_web_unit_refuses_to_start_without_an_encryption_key(host: Any) -> None:
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
            answered.append(http_get(host, f"{WEB}/health")[0])
        assert "200" not in answered, "mastodon-web served without its encryption key"
        journal = host.run(f"journalctl -u mastodon-web --since {shlex.quote(since)} --no-pager")
        assert key in journal.stdout, journal.stdout[-2000:]
    finally:
        host.run(f"cp -a /root/env.production.saved {env_file} && rm -f /root/env.production.saved")
        host.run("systemctl reset-failed mastodon-web; systemctl restart mastodon-web")
    # The host is left serving again, through nginx too, for whatever runs next.
    assert _wait_for_web_health(host), "mastodon-web did not come back after the key was restored"
    assert host.run(f"grep -c '^{key}=' {env_file}").stdout.strip() == "1"
    through_nginx = host.run(
        f"curl -sS -k --max-time 30 --resolve {SERVER_NAME}:443:127.0.0.1 -o /dev/null"
        f" -w '%{{http_code}}' https://{SERVER_NAME}/health"
    )
    assert through_nginx.stdout.strip() == "200"
