"""Side by side: the Debian 13 container boots systemd and reaches its
neighbour by container name and by alias over the default bridge network."""

from __future__ import annotations

from typing import Any

testinfra_hosts = ["bed_peers"]


def test_debian13_boots_systemd(host: Any) -> None:
    assert host.system_info.codename == "trixie"
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_neighbour_resolves_by_container_name_and_alias(host: Any) -> None:
    by_name = host.run("getent hosts tb-bed-debian12").stdout.split()
    by_alias = host.run("getent hosts acme.bed.test").stdout.split()
    assert by_name, "tb-bed-debian12 does not resolve"
    assert by_alias and by_alias[0] == by_name[0]
    assert by_name[0].startswith("172."), by_name  # an address on the docker bridge


def test_neighbours_acme_server_is_reachable_over_the_bridge(host: Any) -> None:
    result = host.run("timeout 5 bash -c '</dev/tcp/acme.bed.test/14000'")
    assert result.rc == 0, result.stderr


def test_neighbour_services_are_not_installed_here(host: Any) -> None:
    assert not host.package("postgresql").is_installed
    assert not host.service("testbed-pebble").is_running
