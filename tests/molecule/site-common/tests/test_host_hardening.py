"""The `common` role's host hardening, as `playbooks/site.yml` leaves it on a fresh server.

SSH keys only (key login and sudo work, passwords are refused even for an account that has
one), the nftables ruleset, fail2ban banning an SSH guesser through nftables, unattended
security upgrades with their reboot window, time sync, journald's limits and the time zone.
Checks a remote machine would make run from a probe container on the default bridge, which
gets the SSH client, sshpass and ping for them. Shared by site-debian12 and site-debian13 (the
role on Debian 12 and 13; site-debian13 moves sshd to another port), with the run's admin key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from containers import docker_exec  # on sys.path through site_fixtures (conftest.py)
from site_fixtures import deployed_vars

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
SCRATCH = Path(os.environ.get("SITE_TEST_DIR", "/nonexistent"))
MAIN_VARS = yaml.safe_load((REPO / "inventories/example/group_vars/all/main.yml").read_text())
# The port the scenario moves sshd to, if it does (site-debian13's options), else the example's.
SSH_PORT = int(deployed_vars()["common_ssh_port"])
ADMIN = "opsadmin"  # the run's admin user (site-common/test-overrides.yml), with the run's key
SSH_OPTS = (
    f"-p {SSH_PORT} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o ConnectTimeout=5"
)


def test_effective_sshd_config_is_keys_only(host: Any) -> None:
    effective = host.check_output("sshd -T")
    settings = dict(line.split(" ", 1) for line in effective.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "without-password"  # sshd -T's name for prohibit-password
    assert settings["authenticationmethods"] == "publickey"
    assert settings["port"] == str(SSH_PORT)
    assert "cbc" not in settings["ciphers"]
    assert all(mac.endswith("-etm@openssh.com") for mac in settings["macs"].split(","))
    assert "sha1" not in settings["kexalgorithms"]


def test_key_login_and_sudo_work_from_another_container(ssh_probe: str, address: str) -> None:
    # A new connection after the firewall and sshd changes: the operator is not locked out.
    result = docker_exec(
        ssh_probe,
        f"timeout 30 ssh {SSH_OPTS} -i /root/admin_ed25519 {ADMIN}@{address} 'sudo -n id -u'",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_a_password_is_refused_even_for_an_account_that_has_one(
    host: Any, ssh_probe: str, address: str
) -> None:
    # A throwaway account with a known password: if sshd accepted passwords, this would log in.
    host.check_output("id pwprobe >/dev/null 2>&1 || useradd -m pwprobe")
    host.check_output("echo 'pwprobe:Correct-Horse-42' | chpasswd")
    try:
        result = docker_exec(
            ssh_probe,
            f"timeout 30 sshpass -p Correct-Horse-42 ssh -p {SSH_PORT} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "
            "-o PreferredAuthentications=password,keyboard-interactive "
            f"-o PubkeyAuthentication=no pwprobe@{address} true",
        )
        assert result.returncode != 0
        assert "Permission denied (publickey)" in result.stderr, result.stderr
    finally:
        host.run("userdel -r pwprobe")


def test_root_password_login_is_refused(ssh_probe: str, address: str) -> None:
    result = docker_exec(
        ssh_probe,
        f"timeout 30 ssh {SSH_OPTS} -o PreferredAuthentications=password "
        f"-o PubkeyAuthentication=no root@{address} true",
    )
    assert result.returncode == 255
    assert "Permission denied" in result.stderr, result.stderr


def test_sudoers_drop_in_is_valid_and_private(host: Any) -> None:
    drop_in = host.file("/etc/sudoers.d/90-admins")
    assert drop_in.mode == 0o440
    assert f"{ADMIN} ALL=(ALL:ALL) NOPASSWD: ALL" in drop_in.content_string
    assert host.run("visudo -c").rc == 0


def test_authorized_keys_hold_only_the_managed_key(host: Any) -> None:
    keys = host.file(f"/home/{ADMIN}/.ssh/authorized_keys")
    assert keys.user == ADMIN
    assert keys.mode == 0o600
    lines = [line for line in keys.content_string.splitlines() if line.strip()]
    managed = (SCRATCH / "ssh" / "id_ed25519.pub").read_text().split()[:2]
    assert [line.split()[:2] for line in lines] == [managed]


def test_the_ruleset_drops_by_default_and_accepts_ssh(host: Any) -> None:
    # test_site.py::test_only_ssh_and_web_answer_from_another_container shows the effect from
    # another container, with real listeners on the filtered ports.
    ruleset = host.check_output("nft list chain inet filter input")
    assert "policy drop;" in ruleset
    assert f"tcp dport {SSH_PORT} ct state new accept" in ruleset
    assert host.service("nftables").is_enabled


def test_ping_is_answered(ssh_probe: str, address: str) -> None:
    # ICMP stays open (rate-limited) so path-MTU discovery and diagnostics keep working.
    assert docker_exec(ssh_probe, f"ping -c 2 -W 3 {address}").returncode == 0


def test_fail2ban_runs_the_sshd_and_nginx_jails_with_nftables(host: Any) -> None:
    assert host.service("fail2ban").is_running
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in status or "File list:" in status
    jails = host.check_output("fail2ban-client status")
    assert "sshd" in jails
    assert "nginx-limit-req" in jails
    assert "nftables" in host.check_output("fail2ban-client get sshd actions")


def test_fail2ban_bans_an_ssh_guesser_through_nftables(
    host: Any, ssh_probe: str, address: str
) -> None:
    probe_ip = docker_exec(ssh_probe, "hostname -I").stdout.split()[0]
    host.run(f"fail2ban-client set sshd unbanip {probe_ip}")
    try:
        for _ in range(7):
            docker_exec(
                ssh_probe,
                f"timeout 15 ssh {SSH_OPTS} nosuchuser@{address} true",
            )
        # fail2ban reads the journal asynchronously: poll, bounded to 30 s.
        banned = host.run(
            "timeout 30 sh -c 'until fail2ban-client get sshd banip | grep -qw "
            f"{probe_ip}; do sleep 1; done'"
        )
        assert banned.rc == 0, host.run("fail2ban-client status sshd").stdout
        # nftables enforces the ban: SSH no longer answers the probe.
        refused = docker_exec(ssh_probe, f"timeout 4 bash -c '</dev/tcp/{address}/{SSH_PORT}'")
        assert refused.returncode != 0
    finally:
        host.run(f"fail2ban-client set sshd unbanip {probe_ip}")
    assert (
        docker_exec(ssh_probe, f"timeout 5 bash -c '</dev/tcp/{address}/{SSH_PORT}'").returncode
        == 0
    )


def test_unattended_upgrades_reboot_window(host: Any) -> None:
    dump = host.check_output("apt-config dump Unattended-Upgrade")
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";' in dump
    assert "label=Debian-Security" in dump
    assert 'label=Debian";' not in dump  # Debian's non-security default was replaced
    periodic = host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert host.package("unattended-upgrades").is_installed


def test_timesyncd_configured_and_enabled(host: Any) -> None:
    # timesyncd does not run in a container (ConditionVirtualization=!container), so the
    # running service cannot be asked; systemd's own merge of every timesyncd.conf fragment is
    # what timesyncd would read, the last NTP= line winning (a later file would override ours).
    assert host.service("systemd-timesyncd").is_enabled
    merged = host.check_output("systemd-analyze cat-config systemd/timesyncd.conf")
    ntp = [line for line in merged.splitlines() if line.startswith("NTP=")]
    assert ntp and ntp[-1].startswith("NTP=0.debian.pool.ntp.org"), ntp


def test_journald_runs_with_its_limits(host: Any) -> None:
    # The running journald's own report, "System Journal (...) is 8.0M, max 500.0M, ..." (systemd
    # 252) or "... is 8M, max 500M, ..." (257): a limit written to a file that journald never
    # re-read would not show here.
    pid = host.check_output("systemctl show -p MainPID --value systemd-journald")
    assert pid.isdigit() and pid != "0", "journald is not running"
    said = host.check_output(f"journalctl _PID={pid} -o cat --no-pager")
    lines = [line for line in said.splitlines() if line.startswith("System Journal (")]
    assert lines, f"journald (pid {pid}) reported no persistent journal"
    assert re.search(r", max 500(\.0)?M,", lines[-1]), lines[-1]


def test_timezone(host: Any) -> None:
    zone = MAIN_VARS["common_timezone"]
    assert host.file("/etc/localtime").linked_to == f"/usr/share/zoneinfo/{zone}"
