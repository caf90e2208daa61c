"""Role analytics: what it installs on a server is what the toolkit is tested with, and the
inventory instance-cli writes gives the role what it needs only where the institution uses it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import example_raw

from instance_cli import answers as A
from instance_cli.errors import InstanceCliError
from instance_cli.plan import make_plan
from instance_cli.render import render_text

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "roles" / "analytics" / "files" / "requirements.txt"


def pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)==([^\s;]+)", line.strip())
        if match:
            out[re.sub(r"\[.*\]", "", match[1]).lower()] = match[2]
    return out


def test_the_server_gets_the_versions_the_toolkit_is_tested_with() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    tested = pins(project["optional-dependencies"]["analytics"] + project["dependencies"])
    server = pins(REQUIREMENTS.read_text().splitlines())
    for package in ("mastodon.py", "networkx", "matplotlib", "click", "jinja2"):
        assert server[package] == tested[package], package
    every_line = [
        line for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert len(every_line) == len(server), "every requirement is pinned with =="


def rendered(raw: dict[str, Any]) -> dict[str, Any]:
    answers = A.validate(raw)
    files = render_text(answers, make_plan(answers))
    return {
        "hosts": yaml.safe_load(files["hosts.yml"]),
        "vars": yaml.safe_load(files["group_vars/all/main.yml"]),
    }


def test_the_server_joins_group_analytics_only_when_the_institution_opts_in() -> None:
    raw = example_raw()
    off = rendered(raw)
    assert "analytics" not in off["hosts"]["all"]["children"]
    raw["analytics"] = {
        "mode": "opt-in",
        "retention_days": 90,
        "courses": [{"name": "bio101", "tags": ["Bio101", "#Bio101Lab"]}],
    }
    on = rendered(raw)
    assert on["hosts"]["all"]["children"]["analytics"] == {"hosts": {"example-1": {}}}
    assert on["vars"]["analytics_courses"] == [{"name": "bio101", "tags": ["Bio101", "#Bio101Lab"]}]
    assert on["vars"]["analytics_retention_days"] == 90
    assert on["vars"]["analytics_secret"] == "{{ vault_analytics_secret }}"


def test_a_course_without_hashtags_is_refused_naming_it() -> None:
    raw = example_raw()
    raw["analytics"] = {"mode": "opt-in", "courses": [{"name": "bio101", "tags": ["Bio 101"]}]}
    with pytest.raises(InstanceCliError) as raised:
        A.validate(raw)
    assert "analytics.courses[1].tags" in str(raised.value)
    assert "a hashtag like Bio101" in str(raised.value)


def test_who_opens_the_snapshots_is_answered_and_the_privacy_policy_says_so() -> None:
    raw = example_raw()
    raw["analytics"] = {"mode": "opt-in", "courses": [{"name": "bio101", "tags": ["Bio101"]}]}
    answers = A.validate(raw)
    files = render_text(answers, make_plan(answers))
    inventory = yaml.safe_load(files["group_vars/all/main.yml"])
    assert inventory["analytics_publish"] == "private"  # the default: nothing on the web
    assert inventory["analytics_nginx_include_dir"] == "{{ nginx_site_include_dir }}"
    assert inventory["nginx_site_include_dir"] == "/etc/nginx/mastodon-site.d"
    assert "only our IT staff open them" in files["community/privacy-policy.md"]
    raw["analytics"]["publish"] = "staff"
    answers = A.validate(raw)
    files = render_text(answers, make_plan(answers))
    assert yaml.safe_load(files["group_vars/all/main.yml"])["analytics_publish"] == "staff"
    policy = files["community/privacy-policy.md"]
    assert "Only this server's moderators and admins can open them" in policy
    assert "only our IT staff open them" not in policy
    raw["analytics"]["publish"] = "everyone"
    with pytest.raises(InstanceCliError) as raised:
        A.validate(raw)
    assert "analytics.publish" in str(raised.value)
    assert "private" in str(raised.value) and "staff" in str(raised.value)
