"""SSH: keys only, password login refused, key login and sudo work from another container."""

from __future__ import annotations

import testinfra

SSH_OPTS = (
    "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o ConnectTimeout=5"
)


def test_effective_sshd_config_is_keys_only(instance: testinfra.host.Host) -> None:
    effective = instance.check_output("sshd -T")
    settings = dict(line.split(" ", 1) for line in effective.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "without-password"  # sshd -T's name for prohibit-password
    assert settings["authenticationmethods"] == "publickey"
    assert settings["port"] == "22"
    assert "cbc" not in settings["ciphers"]
    assert all(mac.endswith("-etm@openssh.com") for mac in settings["macs"].split(","))
    assert "sha1" not in settings["kexalgorithms"]


def test_key_login_and_sudo_work_from_probe(instance_ip: str, probe: testinfra.host.Host) -> None:
    # A NEW connection after the firewall and sshd changes: the operator is not locked out.
    result = probe.run(
        f"timeout 30 ssh {SSH_OPTS} -i /root/admin_ed25519 opsadmin@{instance_ip} 'sudo -n id -u'"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_password_login_is_refused(
    instance: testinfra.host.Host, instance_ip: str, probe: testinfra.host.Host
) -> None:
    # Give a throwaway account a known password: if sshd accepted passwords, this would log in.
    instance.check_output("id pwprobe >/dev/null 2>&1 || useradd -m pwprobe")
    instance.check_output("echo 'pwprobe:Correct-Horse-42' | chpasswd")
    try:
        result = probe.run(
            "timeout 30 sshpass -p Correct-Horse-42 ssh -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "
            "-o PreferredAuthentications=password,keyboard-interactive "
            f"-o PubkeyAuthentication=no pwprobe@{instance_ip} true"
        )
        assert result.rc != 0
        assert "Permission denied (publickey)" in result.stderr
    finally:
        instance.run("userdel -r pwprobe")


def test_root_password_login_is_refused(instance_ip: str, probe: testinfra.host.Host) -> None:
    result = probe.run(
        f"timeout 30 ssh {SSH_OPTS} -o PreferredAuthentications=password "
        f"-o PubkeyAuthentication=no root@{instance_ip} true"
    )
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_sudoers_drop_in_is_valid_and_private(instance: testinfra.host.Host) -> None:
    drop_in = instance.file("/etc/sudoers.d/90-admins")
    assert drop_in.mode == 0o440
    assert "opsadmin ALL=(ALL:ALL) NOPASSWD: ALL" in drop_in.content_string
    assert instance.run("visudo -c").rc == 0


def test_authorized_keys_hold_only_the_managed_key(instance: testinfra.host.Host) -> None:
    keys = instance.file("/home/opsadmin/.ssh/authorized_keys")
    assert keys.user == "opsadmin"
    assert keys.mode == 0o600
    lines = [line for line in keys.content_string.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("ssh-ed25519 ")
