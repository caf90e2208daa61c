"""The systemd sandboxes of nginx, PostgreSQL, PgBouncer and the mastodon-streaming shim.

Shared by the site-debian12 and site-debian13 scenarios (molecule verify,
testinfra; each lists this file in `additional_files_or_dirs`). Checks that every unit runs with
the role's sandbox, that `systemd-analyze security` scores it at or below the target, and that
what the sandbox could break still works: nginx reload and restart, request bodies and the proxy
cache, files written into the ACME webroot from outside (certbot's side), the deploy hook,
PostgreSQL reload, JIT and a pg_dump over the socket, PgBouncer queries and reload.

The scores are measured on the running units, so they would include any test-bed drop-in; none
of these units gets one (tests/molecule/shared/prepare.yml relaxes Redis only), and the Mastodon
units run with exactly the sandbox the role renders (checked property by property below, with
any relaxation listed in RELAXATIONS).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from site_tokens import role_token

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
MAIN_VARS = yaml.safe_load(
    (REPO / "inventories" / "example" / "group_vars" / "all" / "main.yml").read_text()
)
SERVER_NAME: str = MAIN_VARS["nginx_server_name"]
DATABASE: str = MAIN_VARS["postgresql_mastodon_database"]
DB_USER: str = MAIN_VARS["postgresql_mastodon_user"]
ENV_FILE = "/home/mastodon/live/.env.production"
ACME_WEBROOT = "/var/www/acme"  # roles/nginx default nginx_acme_webroot
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/50-reload-nginx"
# Issue 11: nginx, PostgreSQL and PgBouncer at 4.0 or lower ("OK" in systemd-analyze's words).
EXPOSURE_TARGET = 4.0
MASTODON_UNITS = (
    "mastodon-web.service",
    "mastodon-sidekiq.service",
    "mastodon-streaming@4000.service",
)
DROP_INS = {
    "nginx.service": "/etc/systemd/system/nginx.service.d/hardening.conf",
    "postgresql@": "/etc/systemd/system/postgresql@.service.d/hardening.conf",
    "pgbouncer.service": "/etc/systemd/system/pgbouncer.service.d/hardening.conf",
}


def _exposure(host: Any, unit: str) -> float:
    out = host.run("systemd-analyze security --no-pager %s", unit)
    assert out.rc == 0, out.stderr
    found = re.search(r"Overall exposure level for \S+: ([0-9]+\.[0-9]+)", out.stdout)
    assert found, out.stdout[-500:]
    return float(found.group(1))


def _show(host: Any, unit: str, *properties: str) -> dict[str, str]:
    args = " ".join(f"-p {p}" for p in properties)
    out = host.run(f"systemctl show {args} %s", unit)
    assert out.rc == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def _postgresql_unit(host: Any) -> str:
    out = host.run("systemctl list-units --plain --no-legend --all 'postgresql@*-main.service'")
    units = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert len(units) == 1, out.stdout
    return units[0]


def _has_pgbouncer(host: Any) -> bool:
    return bool(host.file("/etc/pgbouncer/pgbouncer.ini").exists)


def _sandboxed_units(host: Any) -> list[str]:
    units = ["nginx.service", _postgresql_unit(host)]
    return units + (["pgbouncer.service"] if _has_pgbouncer(host) else [])


def _drop_in(unit: str) -> str:
    return DROP_INS["postgresql@" if unit.startswith("postgresql@") else unit]


def _wait_for(host: Any, command: str, tries: int = 30) -> None:
    for _ in range(tries):
        if host.run(command).rc == 0:
            return
        time.sleep(1)
    pytest.fail(f"still failing after {tries} s: {command}")


# --- every unit runs in its sandbox, scored at or below the target -------------------------


def test_nginx_postgresql_and_pgbouncer_run_with_the_role_drop_in(host: Any) -> None:
    for unit in _sandboxed_units(host):
        shown = _show(host, unit, "ActiveState", "DropInPaths")
        assert shown["ActiveState"] == "active", unit
        assert _drop_in(unit) in shown["DropInPaths"].split(), (unit, shown["DropInPaths"])


def test_nginx_postgresql_and_pgbouncer_expose_at_most_the_target(host: Any) -> None:
    scores = {unit: _exposure(host, unit) for unit in _sandboxed_units(host)}
    too_high = {unit: score for unit, score in scores.items() if score > EXPOSURE_TARGET}
    assert not too_high, f"exposure above {EXPOSURE_TARGET}: {too_high} (all: {scores})"


def test_streaming_shim_is_sandboxed_like_the_other_mastodon_units(host: Any) -> None:
    shim = _show(host, "mastodon-streaming.service", "ActiveState", "User", "ProtectSystem")
    assert shim == {"ActiveState": "active", "User": "mastodon", "ProtectSystem": "strict"}
    others = {unit: _exposure(host, unit) for unit in MASTODON_UNITS}
    shim_score = _exposure(host, "mastodon-streaming.service")
    assert shim_score <= max(others.values()), (shim_score, others)


def test_postgresql_runs_as_its_owner_without_capabilities(host: Any) -> None:
    shown = _show(host, _postgresql_unit(host), "User", "CapabilityBoundingSet", "MainPID")
    assert shown["User"] == "postgres"
    assert shown["CapabilityBoundingSet"] == ""
    status = host.file(f"/proc/{shown['MainPID']}/status").content_string
    assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE), status


def test_nginx_keeps_only_the_capabilities_it_needs(host: Any) -> None:
    shown = _show(host, "nginx.service", "CapabilityBoundingSet")
    assert sorted(shown["CapabilityBoundingSet"].split()) == [
        "cap_chown",
        "cap_dac_override",
        "cap_net_bind_service",
        "cap_setgid",
        "cap_setuid",
    ]


# --- nginx still does its work inside the sandbox ------------------------------------------


def _nginx_pids(host: Any) -> tuple[str, set[str]]:
    master = _show(host, "nginx.service", "MainPID")["MainPID"]
    workers = host.run("pgrep -P %s", master).stdout.split()
    assert workers, f"nginx master {master} has no workers"
    return master, set(workers)


def _https(path: str, *extra: str) -> str:
    # Inside the container, through nginx: -k because the certificate chain is tested elsewhere.
    quoted = " ".join(f"'{arg}'" for arg in extra)
    return (
        f"curl -sS -k --max-time 60 --resolve {SERVER_NAME}:443:127.0.0.1 -o /dev/null"
        f" -w '%{{http_code}}' {quoted} 'https://{SERVER_NAME}{path}'"
    )


def test_nginx_reload_starts_new_workers_under_the_same_master(host: Any) -> None:
    master, workers = _nginx_pids(host)
    assert host.run("systemctl reload nginx").rc == 0
    for _ in range(30):
        new_master, new_workers = _nginx_pids(host)
        if not new_workers & workers:
            break
        time.sleep(1)
    assert new_master == master
    assert not new_workers & workers, "the old workers are still running"
    assert host.run(_https("/health")).stdout == "200"


def test_nginx_restart_comes_back_and_answers(host: Any) -> None:
    master, _ = _nginx_pids(host)
    assert host.run("systemctl restart nginx").rc == 0
    shown = _show(host, "nginx.service", "ActiveState", "MainPID")
    assert shown["ActiveState"] == "active"
    assert shown["MainPID"] != master
    _wait_for(host, _https("/health") + " | grep -qx 200")


def test_nginx_buffers_a_40_mb_upload_to_disk_and_passes_it_on(host: Any) -> None:
    size = 40 * 1024 * 1024
    owner = MAIN_VARS["instance_settings_owner_username"]
    token = role_token(host, owner, "site-test uploads", "write:media")
    header = "/tmp/harden-auth"
    assert host.run(f"umask 077 && printf 'Authorization: Bearer %s\\n' {token} > {header}").rc == 0
    assert host.run("truncate -s %s /tmp/harden-upload.bin", str(size)).rc == 0
    out = host.run(
        f"curl -sS -k --max-time 120 --resolve {SERVER_NAME}:443:127.0.0.1 -H @{header}"
        f" -F 'file=@/tmp/harden-upload.bin;type=video/mp4' https://{SERVER_NAME}/api/v2/media"
    )
    host.run(f"rm -f /tmp/harden-upload.bin {header}")
    assert out.rc == 0, out.stderr
    media = json.loads(out.stdout)
    assert media["type"] == "video", out.stdout[:300]
    assert host.file(f"/home/mastodon/live/public{media['url']}").size == size


def test_nginx_writes_its_proxy_cache(host: Any) -> None:
    # A query string never asked before is a cache miss that nginx must store on disk (nginx
    # sets the stored file's mtime to whole seconds: compare the change time).
    path = f"/api/v1/instance?harden={time.time_ns()}"
    marker = "/tmp/harden-cache-marker"
    assert host.run("touch %s", marker).rc == 0
    first = host.run(_https(path, "-D", "-"))
    second = host.run(_https(path, "-D", "-"))
    stored = host.run("find %s -type f -cnewer %s", "/var/cache/nginx", marker).stdout.strip()
    host.run("rm -f %s", marker)
    assert re.search(r"^x-cached: MISS", first.stdout, re.IGNORECASE | re.MULTILINE), first.stdout
    assert re.search(r"^x-cached: HIT", second.stdout, re.IGNORECASE | re.MULTILINE), second.stdout
    assert stored, "no new file in /var/cache/nginx"


def test_nginx_serves_what_is_written_into_the_acme_webroot_from_outside(host: Any) -> None:
    # certbot (outside nginx's sandbox) writes the http-01 token; nginx must serve it.
    token = f"harden-{int(time.time())}"
    challenge_dir = f"{ACME_WEBROOT}/.well-known/acme-challenge"
    host.run("install -d -m 0755 %s", challenge_dir)
    assert host.run("echo %s > %s", token, f"{challenge_dir}/{token}").rc == 0
    out = host.run(
        f"curl -sS --max-time 30 -H 'Host: {SERVER_NAME}'"
        f" http://127.0.0.1/.well-known/acme-challenge/{token}"
    )
    host.run("rm -f %s/%s", challenge_dir, token)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == token


@pytest.mark.needs("acme")
def test_certbot_deploy_hook_reloads_the_sandboxed_nginx(host: Any) -> None:
    assert host.file(DEPLOY_HOOK).exists
    master, workers = _nginx_pids(host)
    out = host.run(DEPLOY_HOOK)
    assert out.rc == 0, out.stderr
    time.sleep(2)
    new_master, new_workers = _nginx_pids(host)
    assert new_master == master and not new_workers & workers


@pytest.mark.needs("acme")
def test_certbot_renewal_dry_run_passes_through_the_sandboxed_nginx(host: Any) -> None:
    # --dry-run would switch to Let's Encrypt's staging server: name the lineages' own CA.
    servers = host.run("sed -n 's/^server = //p' /etc/letsencrypt/renewal/*.conf | sort -u")
    assert len(servers.stdout.split()) == 1, servers.stdout
    out = host.run(
        "certbot renew --dry-run --no-random-sleep-on-renew --server %s", servers.stdout.strip()
    )
    assert out.rc == 0, out.stdout[-1000:] + out.stderr[-1000:]


def test_nginx_logged_no_sandbox_denial(host: Any) -> None:
    log = host.file("/var/log/nginx/error.log").content_string
    denials = [
        line
        for line in log.splitlines()
        if re.search(r"Read-only file system|Permission denied|Operation not permitted", line)
    ]
    assert not denials, denials[:5]


# --- PostgreSQL and PgBouncer still do their work inside the sandbox -----------------------


def _psql(host: Any, sql: str, user: str = "postgres", database: str = DATABASE) -> str:
    out = host.run(
        "echo %s | runuser -u %s -- psql -XAt -v ON_ERROR_STOP=1 -d %s", sql, user, database
    )
    assert out.rc == 0, out.stderr
    return str(out.stdout.strip())


def test_postgresql_reload_keeps_the_server_running(host: Any) -> None:
    unit = _postgresql_unit(host)
    started = _psql(host, "SELECT pg_postmaster_start_time()")
    loaded = _psql(host, "SELECT pg_conf_load_time()")
    assert host.run("systemctl reload %s", unit).rc == 0
    for _ in range(30):
        if _psql(host, "SELECT pg_conf_load_time()") != loaded:
            break
        time.sleep(1)
    assert _psql(host, "SELECT pg_conf_load_time()") != loaded, "the reload was not seen"
    assert _psql(host, "SELECT pg_postmaster_start_time()") == started


def test_postgresql_jit_compiles_inside_the_sandbox(host: Any) -> None:
    # MemoryDenyWriteExecute=true would make this query fail ("failed to look up symbol").
    # (EXPLAIN prints its JIT section only with costs on.)
    plan = _psql(
        host,
        "SET jit = on; SET jit_above_cost = 0; SET jit_inline_above_cost = 0;"
        " SET jit_optimize_above_cost = 0;"
        " EXPLAIN (ANALYZE) SELECT sum(x * 2) FROM generate_series(1, 10000) x;",
    )
    assert "JIT:" in plan, plan


def test_pg_dump_over_the_socket_as_the_mastodon_user(host: Any) -> None:
    # What the backups will do: peer authentication on /run/postgresql as the database owner.
    dump = "/tmp/harden-dump.pgc"
    out = host.run("runuser -u mastodon -- pg_dump -h /run/postgresql -Fc -f %s %s", dump, DATABASE)
    assert out.rc == 0, out.stderr
    listing = host.run("pg_restore -l %s", dump)
    host.run("rm -f %s", dump)
    assert listing.rc == 0, listing.stderr
    assert "TABLE public accounts" in listing.stdout


@pytest.mark.needs("pgbouncer")
def test_pgbouncer_passes_queries_before_and_after_a_reload(host: Any) -> None:
    assert _has_pgbouncer(host)
    env = dict(
        line.split("=", 1)
        for line in host.file(ENV_FILE).content_string.splitlines()
        if "=" in line and not line.startswith("#")
    )
    query = (
        "PGPASSWORD=%s psql -XAt -h 127.0.0.1 -p %s -U %s -d %s -c 'SELECT count(*) FROM accounts'"
    )
    args = (env["DB_PASS"], env["DB_PORT"], DB_USER, DATABASE)
    before = host.run(query, *args)
    assert before.rc == 0, before.stderr
    assert host.run("systemctl reload pgbouncer").rc == 0
    after = host.run(query, *args)
    assert after.rc == 0, after.stderr
    assert after.stdout == before.stdout
    log = host.file("/var/log/postgresql/pgbouncer.log").content_string
    assert "got SIGHUP, re-reading config" in log


# --- the Mastodon units run with the sandbox the role renders ------------------------------

# unit -> {property: value} a scenario relaxes with a test-only drop-in (none today).
RELAXATIONS: dict[str, dict[str, str]] = {}
BOOLEAN = {"true": "yes", "false": "no", "yes": "yes", "no": "no"}


def _rendered_sandbox(text: str) -> dict[str, str]:
    """The sandbox directives of a rendered unit file (roles/mastodon/templates/_sandbox.j2)."""
    wanted = ("Private", "Protect", "Restrict", "NoNewPrivileges", "Capability", "ReadWrite",
              "LockPersonality", "SystemCallArchitectures", "RemoveIPC")  # fmt: skip
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith(wanted):
            out[key] = value.strip()
    return out


def _same(key: str, rendered: str, shown: str) -> bool:
    if rendered.lower() in BOOLEAN:
        return BOOLEAN[rendered.lower()] == shown
    if key in ("RestrictAddressFamilies", "ReadWritePaths", "CapabilityBoundingSet"):
        return set(rendered.split()) == set(shown.split())
    return rendered == shown


@pytest.mark.parametrize("unit", MASTODON_UNITS)
def test_mastodon_units_run_with_exactly_the_sandbox_the_role_renders(host: Any, unit: str) -> None:
    name = unit.replace("@4000", "@") if "@" in unit else unit
    rendered = _rendered_sandbox(host.file(f"/etc/systemd/system/{name}").content_string)
    assert {"PrivateUsers", "ProtectSystem", "CapabilityBoundingSet"} <= set(rendered), rendered
    shown = _show(host, unit, "DropInPaths", *rendered)
    relaxed = RELAXATIONS.get(unit, {})
    drop_ins = [p for p in shown.pop("DropInPaths", "").split() if p]
    assert bool(drop_ins) == bool(relaxed), f"{unit}: unlisted drop-ins {drop_ins}"
    differs = {
        key: (value, shown.get(key))
        for key, value in rendered.items()
        if not _same(key, relaxed.get(key, value), shown.get(key, ""))
    }
    assert not differs, f"{unit}: running sandbox differs from the rendered unit: {differs}"


def test_the_sandbox_comparison_catches_a_relaxed_property() -> None:
    rendered = _rendered_sandbox("[Service]\nPrivateUsers=true\nProtectSystem=strict\nUser=x\n")
    assert rendered == {"PrivateUsers": "true", "ProtectSystem": "strict"}
    assert _same("PrivateUsers", "true", "yes")
    assert not _same("PrivateUsers", "true", "no")  # a PrivateUsers=false drop-in
    assert not _same("ProtectSystem", "strict", "full")
    assert _same("RestrictAddressFamilies", "AF_INET AF_UNIX", "AF_UNIX AF_INET")
