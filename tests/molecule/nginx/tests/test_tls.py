"""TLS: a pebble-issued certificate, exactly TLS 1.2/1.3, Mozilla intermediate ciphers, HSTS."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "tests"))
from tls_policy import MOZILLA_INTERMEDIATE_TLS12


def _accepted(scan: dict[str, Any], key: str) -> set[str]:
    entry = scan[key]
    assert entry["status"] == "COMPLETED", entry
    return {s["cipher_suite"]["openssl_name"] for s in entry["result"]["accepted_cipher_suites"]}


def test_only_tls12_and_tls13_are_accepted(sslyze_scan: dict[str, Any]) -> None:
    for old in (
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ):
        assert _accepted(sslyze_scan, old) == set(), old
    assert _accepted(sslyze_scan, "tls_1_2_cipher_suites")
    assert _accepted(sslyze_scan, "tls_1_3_cipher_suites")


def test_tls12_ciphers_are_exactly_mozilla_intermediate(sslyze_scan: dict[str, Any]) -> None:
    assert _accepted(sslyze_scan, "tls_1_2_cipher_suites") == MOZILLA_INTERMEDIATE_TLS12


def test_hsts_header_two_years(sslyze_scan: dict[str, Any]) -> None:
    headers = sslyze_scan["http_headers"]
    assert headers["status"] == "COMPLETED", headers
    hsts = headers["result"]["strict_transport_security_header"]
    assert hsts is not None
    assert hsts["max_age"] == 63072000
    assert hsts["include_subdomains"] is True


def test_certificates_are_issued_by_pebble(sslyze_scan: dict[str, Any]) -> None:
    deployments = sslyze_scan["certificate_info"]["result"]["certificate_deployments"]
    # One ECDSA and one RSA certificate, both from the pebble CA, for the site name.
    assert len(deployments) == 2
    for deployment in deployments:
        leaf = deployment["received_certificate_chain"][0]
        issuer = leaf["issuer"]["rfc4514_string"]
        assert "Pebble Intermediate CA" in issuer, issuer
        assert "social.example.test" in str(leaf["subject_alternative_name"])


def test_certbot_lineages_and_renewal(instance: testinfra.host.Host) -> None:
    for key_type in ("ecdsa", "rsa"):
        live = f"/etc/letsencrypt/live/social.example.test-{key_type}/fullchain.pem"
        assert instance.file(live).exists
        link = instance.file(f"/etc/nginx/tls/social.example.test/{key_type}-fullchain.pem")
        assert link.is_symlink
        assert link.linked_to.startswith("/etc/letsencrypt/archive/social.example.test-")
    assert instance.service("certbot.timer").is_enabled
    hook = instance.file("/etc/letsencrypt/renewal-hooks/deploy/50-reload-nginx")
    assert hook.mode == 0o755
    assert "systemctl reload nginx" in hook.content_string
    renewal = instance.file(
        "/etc/letsencrypt/renewal/social.example.test-ecdsa.conf"
    ).content_string
    assert "authenticator = webroot" in renewal
