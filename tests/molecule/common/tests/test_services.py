"""fail2ban, unattended upgrades, time sync and journald limits."""

from __future__ import annotations

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
    assert instance.service("systemd-timesyncd").is_enabled
    conf = instance.file("/etc/systemd/timesyncd.conf.d/50-instance.conf").content_string
    assert "NTP=0.debian.pool.ntp.org" in conf


def test_journald_limits(instance: testinfra.host.Host) -> None:
    conf = instance.file("/etc/systemd/journald.conf.d/50-limits.conf").content_string
    assert "SystemMaxUse=500M" in conf
    assert instance.service("systemd-journald").is_running


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
