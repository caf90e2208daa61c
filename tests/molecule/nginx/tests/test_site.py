"""The Mastodon site: redirects, proxying, static files, upload size, error page, nginx -t."""

from __future__ import annotations

import time

import pytest
import testinfra
from conftest import SERVER_NAME, curl


def test_nginx_config_is_valid(instance: testinfra.host.Host) -> None:
    assert instance.run("nginx -t").rc == 0
    assert instance.service("nginx").is_running
    assert instance.service("nginx").is_enabled


def test_port_80_redirects_to_https(instance: testinfra.host.Host) -> None:
    result = curl(
        instance,
        f"-o /dev/null -w '%{{http_code}} %{{redirect_url}}' http://{SERVER_NAME}/about?x=1",
    )
    assert result.stdout == f"301 https://{SERVER_NAME}/about?x=1"


def test_port_80_serves_acme_challenges(instance: testinfra.host.Host) -> None:
    instance.check_output("mkdir -p /var/www/acme/.well-known/acme-challenge")
    instance.check_output(
        "echo token-body > /var/www/acme/.well-known/acme-challenge/hd-test-token"
    )
    try:
        result = curl(instance, f"-f http://{SERVER_NAME}/.well-known/acme-challenge/hd-test-token")
        assert result.rc == 0
        assert result.stdout.strip() == "token-body"
    finally:
        instance.run("rm -f /var/www/acme/.well-known/acme-challenge/hd-test-token")


def test_https_proxies_to_web_upstream(instance: testinfra.host.Host) -> None:
    result = curl(instance, f"-k -f https://{SERVER_NAME}/")
    assert result.rc == 0, result.stderr
    assert "dummy mastodon web upstream" in result.stdout


def test_streaming_goes_to_streaming_upstream(instance: testinfra.host.Host) -> None:
    result = curl(instance, f"-k -f https://{SERVER_NAME}/api/v1/streaming/health")
    assert result.rc == 0, result.stderr
    assert "dummy streaming upstream" in result.stdout


def test_static_assets_have_long_cache_and_security_headers(instance: testinfra.host.Host) -> None:
    result = curl(instance, f"-k -f -D - -o /dev/null https://{SERVER_NAME}/assets/app.css")
    headers = result.stdout.lower()
    assert "cache-control: public, max-age=2419200, must-revalidate" in headers
    assert "x-content-type-options: nosniff" in headers
    assert "strict-transport-security: max-age=63072000; includesubdomains" in headers


def test_uploads_cannot_run_scripts(instance: testinfra.host.Host) -> None:
    result = curl(instance, f"-k -f -D - -o /dev/null https://{SERVER_NAME}/system/upload.svg")
    assert "content-security-policy: default-src 'none'" in result.stdout.lower()


@pytest.mark.parametrize(("size_mb", "expect_413"), [(40, False), (81, True)])
def test_upload_size_limit_is_80m(
    instance: testinfra.host.Host, size_mb: int, expect_413: bool
) -> None:
    body = f"/tmp/hd-upload-{size_mb}"
    instance.check_output(f"head -c {size_mb}M /dev/zero > {body}")
    try:
        result = curl(
            instance,
            f"-k -o /dev/null -w '%{{http_code}}' --data-binary @{body} "
            f"https://{SERVER_NAME}/api/v2/media",
        )
        # The dummy upstream answers POST with 501; nginx itself answers 413 above the limit.
        assert (result.stdout == "413") is expect_413, result.stdout
        assert result.stdout != "000"
    finally:
        instance.run(f"rm -f {body}")


def _restart_dummy_web(instance: testinfra.host.Host) -> None:
    """Start the dummy web upstream again and wait until it listens (bounded: 30 s), so the next
    test does not meet a 502 from a process still starting."""
    instance.run(
        "systemd-run --unit=hd-dummy-web python3 -m http.server 3000 --bind 127.0.0.1 "
        "--directory /srv/dummy-web"
    )
    for _ in range(30):
        if instance.run("curl -s -o /dev/null --max-time 2 http://127.0.0.1:3000/").rc == 0:
            return
        time.sleep(1)
    raise AssertionError("the dummy web upstream did not come back within 30 s")


def test_upstream_failure_shows_mastodon_500_page(instance: testinfra.host.Host) -> None:
    instance.check_output("systemctl stop hd-dummy-web.service")
    try:
        result = curl(
            instance, f"-k -w '\\n%{{http_code}}' https://{SERVER_NAME}/nocache-{id(instance)}"
        )
        assert result.stdout.strip().endswith("502")
        assert "mastodon 500 page" in result.stdout
    finally:
        _restart_dummy_web(instance)


def _status_and_x_cached(instance: testinfra.host.Host, path: str) -> tuple[str, str]:
    result = curl(instance, f"-k -D - -o /dev/null -w '%{{http_code}}' https://{SERVER_NAME}{path}")
    lines = result.stdout.strip().splitlines()
    cached = [
        line.partition(":")[2].strip() for line in lines if line.lower().startswith("x-cached:")
    ]
    return lines[-1], cached[0] if cached else ""


def test_health_is_never_answered_from_the_cache(instance: testinfra.host.Host) -> None:
    # The dummy upstream sends no Cache-Control, so nginx keeps its 200s for 7 days: a page
    # asked twice comes from the cache, /health never does, and fails while the upstream is down.
    page = f"/cached-page-{id(instance)}"
    instance.check_output(f"echo cached > /srv/dummy-web{page}")
    assert _status_and_x_cached(instance, page) == ("200", "MISS")
    assert _status_and_x_cached(instance, page) == ("200", "HIT")
    for _ in range(2):
        assert _status_and_x_cached(instance, "/health") == ("200", "BYPASS")
    instance.check_output("systemctl stop hd-dummy-web.service")
    try:
        assert _status_and_x_cached(instance, page)[1] in {"HIT", "STALE"}
        # 502 with Mastodon's error page (error_page), not the copy of the last 200.
        assert _status_and_x_cached(instance, "/health")[0] == "502"
    finally:
        _restart_dummy_web(instance)


def test_auth_endpoint_is_rate_limited(instance: testinfra.host.Host) -> None:
    codes = []
    for _ in range(20):
        result = curl(
            instance,
            f"-k -o /dev/null -w '%{{http_code}}' -X POST https://{SERVER_NAME}/auth/sign_in",
        )
        codes.append(result.stdout)
    assert "429" in codes, codes
    log = instance.file("/var/log/nginx/error.log").content_string
    assert "limiting requests" in log
