"""fail2ban, unattended upgrades, time sync and journald limits."""

from __future__ import annotations

import re

import testinfra


def test_fail2ban_sshd_jail_is_active(instance: testinfra.host.Host) -> None:
    assert instance.service("fail2ban").is_running
    status = instance.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in status or "File list:" in status
    jails = instance.check_output("fail2ban-client status")
    assert "sshd" in jails
    assert "nginx-limit-req" in jails


def test_fail2ban_bans_with_nftables(instance: testinfra.host.Host) -> None:
    action = instance.check_output("fail2ban-client get sshd actions")
    assert "nftables" in action


def test_unattended_upgrades_reboot_window(instance: testinfra.host.Host) -> None:
    dump = instance.check_output("apt-config dump Unattended-Upgrade")
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";' in dump
    assert "label=Debian-Security" in dump
    assert 'label=Debian";' not in dump  # Debian's non-security default was replaced
    periodic = instance.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert instance.package("unattended-upgrades").is_installed


def test_timesyncd_configured_and_enabled(instance: testinfra.host.Host) -> None:
    # timesyncd does not run in a container (ConditionVirtualization=!container), so the
    # running service cannot be asked; systemd's own merge of every timesyncd.conf fragment is
    # what timesyncd would read, the last NTP= line winning (a later file would override ours).
    assert instance.service("systemd-timesyncd").is_enabled
    merged = instance.check_output("systemd-analyze cat-config systemd/timesyncd.conf")
    ntp = [line for line in merged.splitlines() if line.startswith("NTP=")]
    assert ntp and ntp[-1].startswith("NTP=0.debian.pool.ntp.org"), ntp


def _journald_says(instance: testinfra.host.Host) -> str:
    """What the running journald reported about its limits when it last (re)started."""
    pid = instance.check_output("systemctl show -p MainPID --value systemd-journald")
    assert pid.isdigit() and pid != "0", "journald is not running"
    said = instance.check_output(f"journalctl _PID={pid} -o cat --no-pager")
    lines = [line for line in said.splitlines() if line.startswith("System Journal (")]
    assert lines, f"journald (pid {pid}) reported no persistent journal"
    return lines[-1]


def test_journald_limits(instance: testinfra.host.Host) -> None:
    # The running journald's own report, "System Journal (...) is 8.0M, max 500.0M, ..." (systemd
    # 252) or "... is 8M, max 500M, ..." (257): a limit written to a file that journald never
    # re-read would not show here.
    said = _journald_says(instance)
    assert re.search(r", max 500(\.0)?M,", said), said


def test_timezone(instance: testinfra.host.Host) -> None:
    assert instance.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"


def test_fail2ban_bans_ssh_guessing_from_probe(
    instance: testinfra.host.Host, instance_ip: str, probe: testinfra.host.Host
) -> None:
    probe_ip = next(a for a in probe.interface("eth0").addresses if ":" not in a)
    instance.run(f"fail2ban-client set sshd unbanip {probe_ip}")
    try:
        for _ in range(7):
            probe.run(
                "timeout 15 ssh -o BatchMode=yes -o StrictHostKeyChecking=no "
                f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 nosuchuser@{instance_ip} true"
            )
        # fail2ban reads the journal asynchronously: poll, bounded to 30 s.
        banned = instance.run(
            "timeout 30 sh -c 'until fail2ban-client get sshd banip | grep -qw "
            f"{probe_ip}; do sleep 1; done'"
        )
        assert banned.rc == 0, instance.run("fail2ban-client status sshd").stdout
        # The ban is enforced by nftables: SSH no longer answers the probe.
        assert probe.run(f"nc -z -w 3 {instance_ip} 22").rc != 0
    finally:
        instance.run(f"fail2ban-client set sshd unbanip {probe_ip}")
    assert probe.run(f"nc -z -w 5 {instance_ip} 22").rc == 0
