"""The community documents: code of conduct ladder, every GDPR Art. 13 item, values from answers."""

from __future__ import annotations

from typing import Any

import pytest
from cli_testlib import example_raw

from instance_cli.answers import validate
from instance_cli.plan import make_plan
from instance_cli.render import render_text


def render(raw: dict[str, Any]) -> dict[str, str]:
    answers = validate(raw)
    return render_text(answers, make_plan(answers))


def test_code_of_conduct_has_the_graduated_ladder_and_appeals() -> None:
    text = render(example_raw())["community/code-of-conduct.md"]
    positions = [text.index(f"**{step}**") for step in
                 ("Correction", "Warning", "Temporary limit", "Suspension")]  # fmt: skip
    assert positions == sorted(positions), "ladder steps out of order"
    assert "appeal" in text.lower()
    assert "community managers" in text
    assert "it-services@example-university.edu" in text


@pytest.mark.parametrize(
    "needle",
    [
        "## Who is responsible (controller)",
        "Example University is the controller",
        "it-services@example-university.edu",
        "Data Protection Office of Example University",  # DPO
        "dpo@example-university.edu",
        "why (purpose)",
        "legal basis",
        "Art. 6(1)(b)",
        "Art. 6(1)(f)",
        "Other servers (federation)",  # recipients incl. federation
        "smtp.example-university.edu",
        "Transfers outside the EU/EEA",
        "**access**",
        "**rectification**",
        "**erasure**",
        "**restriction**",
        "**data portability**",
        "**object**",
        "**withdraw consent**",
        "supervisory authority",
        "The data protection authority of the university's state (https://dpa.example.org)",
        "Germany",
        "Do you have to give us your data?",
        "No automated decisions",
        "no tracking cookies",
    ],
)
def test_privacy_policy_covers_every_article_13_item(needle: str) -> None:
    assert needle in render(example_raw())["community/privacy-policy.md"]


def test_privacy_policy_retention_periods_come_from_the_answers() -> None:
    raw = example_raw()
    raw["retention"] = {"ip_days": 3, "session_days": 14, "media_cache_days": 5}
    raw["backup"]["retention_days"] = 90
    text = render(raw)["community/privacy-policy.md"]
    assert "IP addresses: **3 days**" in text
    assert "Inactive login sessions: **14 days**" in text
    assert "Media cached from other servers: **5 days**" in text
    assert "Backups: **90 days**" in text
    main = render(raw)["group_vars/all/main.yml"]
    assert "mastodon_ip_retention_days: 3\n" in main
    assert "mastodon_media_cache_retention_days: 5\n" in main
    assert "backup_retention_days: 90" in main


def test_course_analytics_is_in_the_privacy_policy_only_when_the_institution_uses_it() -> None:
    raw = example_raw()
    off = render(raw)["community/privacy-policy.md"]
    assert "course analytics" not in off.lower()
    assert "This server uses no\nanalytics" in off
    raw["analytics"] = {"mode": "opt-in", "retention_days": 90}
    on = render(raw)["community/privacy-policy.md"]
    assert "public posts with a course's hashtag" in on
    assert '"Course analytics: opt-in"' in on  # the opt-in, in the words of docs/analytics.md
    assert "Course analytics snapshots: **90 days**" in on
    assert "This server uses no\nanalytics" not in on


def test_sso_and_allowlist_change_the_texts() -> None:
    raw = example_raw()
    raw["federation"]["mode"] = "allowlist"
    raw["sso"] = {"mode": "saml", "saml": {"idp_sso_url": "https://idp.example.edu/sso",
                                           "cert_fingerprint": ":".join(["AB"] * 32)}}  # fmt: skip
    files = render(raw)
    assert "single sign-on" in files["community/privacy-policy.md"]
    assert "federates only with servers we have approved" in files["community/privacy-policy.md"]
    assert "limited federation" in files["community/about.md"]
    assert "mastodon_limited_federation_mode: true" in files["group_vars/all/main.yml"]
    assert "mastodon_saml_enabled: true" in files["group_vars/all/main.yml"]


@pytest.mark.parametrize(
    ("mode", "mastodon", "phrase"),
    [("open", "open", "can sign up"), ("approval", "approved", "moderators look at every"),
     ("closed", "none", "by invitation")],
)  # fmt: skip
def test_registration_modes_use_mastodons_names(mode: str, mastodon: str, phrase: str) -> None:
    raw = example_raw()
    raw["registrations"]["mode"] = mode
    files = render(raw)
    assert f"instance_settings_registrations_mode: {mastodon}" in files["group_vars/all/main.yml"]
    assert phrase in files["community/about.md"]


def test_web_domain_empty_means_local_domain_everywhere() -> None:
    raw = example_raw()
    raw["domains"]["web"] = ""
    main = render(raw)["group_vars/all/main.yml"]
    assert "nginx_server_name: example-university.edu" in main
    assert "mastodon_web_domain: ''" in main
