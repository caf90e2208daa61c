"""The bed scenario: systemd boots, PostgreSQL and Redis run and answer."""

from __future__ import annotations

from typing import Any


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
