"""Re-runs of the role: the certificate modules change only what differs.

This test runs the scenario's converge playbook again after breaking the host on purpose and
reads the per-task results from the ansible.posix.json callback (test_check_mode_drift.py checks
the converged host in check mode). It runs before test_site.py and test_tls.py (alphabetical
order), which then check the repaired host.
"""

from __future__ import annotations

import testinfra
from conftest import SERVER_NAME, run_converge, task_results

TLS_DIR = f"/etc/nginx/tls/{SERVER_NAME}"
LIVE_DIR = f"/etc/letsencrypt/live/{SERVER_NAME}"
HOOK = "/etc/letsencrypt/renewal-hooks/deploy/50-reload-nginx"


def test_rerun_repairs_exactly_what_differs(
    named_instance: tuple[str, testinfra.host.Host],
) -> None:
    host_name, host = named_instance
    # Break three things: a lost certificate, a hook with the wrong mode, a stopped timer.
    host.check_output(f"certbot delete --non-interactive --cert-name {SERVER_NAME}-rsa")
    host.check_output(f"chmod 0644 {HOOK}")
    host.check_output("systemctl disable --now certbot.timer")

    document = run_converge(host_name)
    changed = {
        name for name, _, result in task_results(document, host_name) if result.get("changed")
    }
    assert changed == {
        # The rsa links fall back to the bootstrap certificate, certbot issues a new one and the
        # links follow it in the same run.
        "Link the site certificates to the issued ones, or to the bootstrap ones until issuance",
        "Request certificates that are missing, expire within a day or are for other names",
        "Point nginx at the certificates issued just now",
        "Reload nginx after every renewal",
        "Enable certbot's renewal timer",
        "Reload nginx",
    }
    # Only the rsa certificate was requested; the ecdsa one was still valid for the same names.
    requests = next(
        result
        for name, _, result in task_results(document, host_name)
        if name.startswith("Request certificates")
    )
    requested = [r["item"] for r in requests["results"] if r.get("changed")]
    assert requested == ["rsa"]

    for part in ("fullchain", "privkey"):
        link = host.file(f"{TLS_DIR}/rsa-{part}.pem")
        assert link.is_symlink
        assert host.check_output(f"readlink {TLS_DIR}/rsa-{part}.pem") == (
            f"{LIVE_DIR}-rsa/{part}.pem"
        )
    assert host.file(f"{LIVE_DIR}-rsa/fullchain.pem").exists
    assert host.file(HOOK).mode == 0o755
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running
    # nginx serves the new rsa certificate (same serial as on disk) to an RSA-only client.
    on_disk = host.check_output(f"openssl x509 -noout -serial -in {LIVE_DIR}-rsa/cert.pem")
    served = host.check_output(
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} -tls1_2 "
        "-cipher ECDHE-RSA-AES128-GCM-SHA256 </dev/null 2>/dev/null | openssl x509 -noout -serial"
    )
    assert served == on_disk
