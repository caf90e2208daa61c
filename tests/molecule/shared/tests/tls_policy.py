"""The TLS policy the nginx role promises (Mozilla's "intermediate" configuration), in one place
for every scenario that scans a server with sslyze. Imported by path: scenarios put this
directory on sys.path."""

from __future__ import annotations

# The only TLS 1.2 suites allowed: ECDHE key exchange with AEAD ciphers (TLS 1.3 suites are
# not configurable in nginx and all acceptable).
MOZILLA_INTERMEDIATE_TLS12 = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    }
)
