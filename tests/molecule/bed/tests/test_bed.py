"""The bed scenario: systemd boots, PostgreSQL and Redis run and answer."""

from __future__ import annotations

from typing import Any

testinfra_hosts = ["bed_services"]


def test_systemd_reports_the_system_running(host: Any) -> None:
    state = host.run("systemctl is-system-running")
    assert state.stdout.strip() == "running", host.run("systemctl --failed").stdout


def test_systemd_is_pid_1(host: Any) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_postgresql_answers_a_query(host: Any) -> None:
    result = host.run("runuser -u postgres -- psql -XAtc 'SELECT 6 * 7'")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_postgresql_cluster_service_is_active(host: Any) -> None:
    version = host.run("ls /etc/postgresql").stdout.split()
    assert version, "no PostgreSQL cluster configured"
    assert host.service(f"postgresql@{version[0]}-main").is_running


def test_redis_answers_ping(host: Any) -> None:
    result = host.run("redis-cli -h 127.0.0.1 PING")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "PONG"


def test_redis_runs_with_the_test_only_dropin(host: Any) -> None:
    assert host.service("redis-server").is_running
    show = host.run("systemctl show -p PrivateUsers -p DropInPaths redis-server")
    assert "PrivateUsers=no" in show.stdout
    assert "testbed-privateusers.conf" in show.stdout


def test_redis_listens_on_loopback_only(host: Any) -> None:
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening


ACME_DOMAIN = "bed.testbed.test"


def test_pebble_directory_answers_over_the_test_ca(host: Any) -> None:
    result = host.run("curl -sS --cacert /etc/testbed-pebble/ca.pem https://localhost:14000/dir")
    assert result.rc == 0, result.stderr
    assert '"newOrder"' in result.stdout


def test_pebble_ca_is_trusted_only_inside_the_container(host: Any) -> None:
    assert host.file("/usr/local/share/ca-certificates/testbed-pebble-ca.crt").exists
    assert host.run("curl -sS -o /dev/null https://localhost:14000/dir").rc == 0


def test_certificate_was_issued_by_pebble_after_http01(host: Any) -> None:
    cert = f"/etc/letsencrypt/live/{ACME_DOMAIN}/cert.pem"
    assert host.file(cert).exists
    out = host.run(f"openssl x509 -noout -issuer -ext subjectAltName -in {cert}")
    assert out.rc == 0, out.stderr
    assert "Pebble Intermediate CA" in out.stdout
    assert f"DNS:{ACME_DOMAIN}" in out.stdout
    log = host.run("journalctl -u testbed-pebble --no-pager -o cat").stdout
    challenge_url = f"http://{ACME_DOMAIN}:80/.well-known/acme-challenge/"
    assert f"Attempting to validate w/ HTTP: {challenge_url}" in log


def test_pebble_validates_for_real(host: Any) -> None:
    env = host.run("systemctl show -p Environment testbed-pebble").stdout
    assert "PEBBLE_VA_ALWAYS_VALID=0" in env
