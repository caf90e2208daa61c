"""nftables: default-deny inbound; from another container only 22/80/443 answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import testinfra

OPEN_PORTS = [80, 443]
FILTERED_PORTS = [3000, 4000, 5432, 6379]


@pytest.fixture(scope="module")
def listeners(instance: testinfra.host.Host) -> Iterator[None]:
    """Throwaway listeners on 0.0.0.0, stopped by systemd after 120 s at the latest."""
    units = []
    for port in OPEN_PORTS + FILTERED_PORTS:
        unit = f"hd-listener-{port}"
        instance.run(f"systemctl stop {unit}")
        instance.check_output(
            f"systemd-run --unit={unit} -p RuntimeMaxSec=120 "
            f"python3 -m http.server {port} --bind 0.0.0.0"
        )
        units.append(unit)
    for port in OPEN_PORTS + FILTERED_PORTS:
        # Listening locally, so a failed probe below means "filtered", not "nothing there".
        instance.check_output(
            f"timeout 20 sh -c 'until curl -fsS -o /dev/null http://127.0.0.1:{port}/; "
            "do sleep 0.5; done'"
        )
    yield
    for unit in units:
        instance.run(f"systemctl stop {unit}")


def test_ruleset_is_default_deny(instance: testinfra.host.Host) -> None:
    ruleset = instance.check_output("nft list chain inet filter input")
    assert "policy drop;" in ruleset
    assert "tcp dport 22 ct state new accept" in ruleset
    assert instance.service("nftables").is_enabled


@pytest.mark.usefixtures("listeners")
@pytest.mark.parametrize("port", [22, *OPEN_PORTS])
def test_allowed_ports_answer_from_probe(
    probe: testinfra.host.Host, instance_ip: str, port: int
) -> None:
    assert probe.run(f"nc -z -w 5 {instance_ip} {port}").rc == 0


@pytest.mark.usefixtures("listeners")
@pytest.mark.parametrize("port", FILTERED_PORTS)
def test_other_ports_are_filtered_from_probe(
    probe: testinfra.host.Host, instance_ip: str, port: int
) -> None:
    result = probe.run(f"nc -z -w 3 {instance_ip} {port}")
    assert result.rc != 0


def test_ping_is_answered(probe: testinfra.host.Host, instance_ip: str) -> None:
    # ICMP stays open (rate-limited) so path-MTU discovery and diagnostics keep working.
    assert probe.run(f"ping -c 2 -W 3 {instance_ip}").rc == 0
