"""Role instance_settings against the Mastodon stand-in.

Molecule has applied community/v1 (converge) and checked idempotence. These tests then, in
file order: check that the HTTP API equals the v1 files; run the settings playbook with
community/v2 in --check --diff mode and then for real and compare what check mode predicted
with what apply changed; check that the API equals the v2 files; apply again (0 changed); and
feed each kind of bad input, which must fail with file, line and reason before anything on
the server changes.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared" / "tests"))

from playbooks import run_playbook  # noqa: E402
from playbooks import task_results as shared_task_results  # noqa: E402

REPO = SCENARIO.parents[2]
HOST = "is-settings-debian12"
LIVE = "/home/mastodon/live"
TRICKY = "#{system('id')}"

# The course analytics' accounts (prepare.yml's #Bio101 learners, the role's service account):
# not staff, and never to be made staff.
ANALYTICS_USERS = {"ada_optin", "bruno_private", "course_analytics"} | {
    f"learner{n:02d}" for n in range(1, 46)
}

# --- helpers ---------------------------------------------------------------------------------


def staff_roles(roles: dict[str, str]) -> dict[str, str]:
    """The roles of every user but the course analytics' ones, which must have none."""
    assert {roles.get(name) for name in ANALYTICS_USERS} == {""}, roles
    return {name: role for name, role in roles.items() if name not in ANALYTICS_USERS}


def playbook(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run playbooks/settings.yml against the scenario's inventory; JSON result and raw text."""
    return run_playbook(
        "settings.yml", *args, timeout=900, env={"MOLECULE_SCENARIO_DIRECTORY": str(SCENARIO)}
    )


def task_results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task name -> this host's result."""
    return shared_task_results(doc, HOST)


def changes(results: dict[str, dict[str, Any]], fragment: str) -> list[dict[str, Any]]:
    matches = [r for name, r in results.items() if fragment in name]
    assert len(matches) == 1, f"expected one task named like {fragment!r}"
    return list(matches[0].get("changes") or [])


def v2_vars() -> str:
    return "@" + str(SCENARIO / "vars" / "v2.yml")


def run_in_container(host: Any, command: str) -> str:
    result = host.run(command)
    assert result.rc == 0, result.stderr
    return str(result.stdout)


def _proxied_request(path: str) -> str:
    """Python that builds a request to the web process as nginx sends it (the instance's Host and
    X-Forwarded-Proto: https), as Mastodon's host checks and forced TLS expect."""
    headers = {"Host": web_domain(), "X-Forwarded-Proto": "https"}
    return f"r=u.Request('http://127.0.0.1:3000{path}', headers={headers!r});"


def api_get(host: Any, path: str) -> Any:
    script = (
        "import json,sys,urllib.request as u;"
        + _proxied_request(path)
        + "print(u.urlopen(r, timeout=10).read().decode())"
    )
    return json.loads(run_in_container(host, f"python3 -c {shlex_quote(script)}"))


def admin_get(host: Any, path: str) -> Any:
    """GET an admin endpoint with the role's token, read and used inside the container only."""
    token_rb = (
        "app = Doorkeeper::Application.find_by(name: 'instance-settings (Ansible)');"
        " print Doorkeeper::AccessToken.where(application_id: app.id, revoked_at: nil)"
        ".order(:id).last.token"
    )
    fetch = (
        "import os,urllib.request as u;"
        + _proxied_request(path)
        + "r.add_header('Authorization', 'Bearer '+os.environ['T']);"
        "print(u.urlopen(r, timeout=10).read().decode())"
    )
    command = (
        f"cd {LIVE} && export T=$(runuser -u mastodon -- env RAILS_ENV=production"
        f" bin/rails runner {shlex_quote(token_rb)}) && python3 -c {shlex_quote(fetch)}"
    )
    return json.loads(run_in_container(host, command))


def rails_json(host: Any, ruby: str) -> Any:
    command = (
        f"cd {LIVE} && runuser -u mastodon -- env RAILS_ENV=production"
        f" bin/rails runner {shlex_quote('require %q(json); print JSON.generate(' + ruby + ')')}"
    )
    return json.loads(run_in_container(host, command))


def shlex_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


SETTING_KEYS = [
    "site_title",
    "site_short_description",
    "site_extended_description",
    "site_contact_username",
    "site_contact_email",
    "site_terms",
    "registrations_mode",
    "closed_registrations_message",
    "require_invite_text",
    "content_cache_retention_period",
    "media_cache_retention_period",
]


def server_state(host: Any) -> dict[str, Any]:
    """Everything the role manages, read from the server."""
    blocks = admin_get(host, "/api/v1/admin/domain_blocks?limit=200")
    return {
        "rules": api_get(host, "/api/v1/instance/rules"),
        "instance": api_get(host, "/api/v2/instance"),
        "settings": rails_json(
            host, "%w(" + " ".join(SETTING_KEYS) + ").to_h { |k| [k, Setting[k]] }"
        ),
        "roles": rails_json(
            host,
            "User.includes(:account).to_h { |u| [u.account.username,"
            " (u.role_id.nil? || u.role_id == -99) ? '' : u.role.name] }",
        ),
        "blocks": sorted(
            ({k: v for k, v in b.items() if k not in ("created_at", "digest")} for b in blocks),
            key=lambda b: b["domain"],
        ),
    }


def file_rules(version: str) -> list[dict[str, str]]:
    data = yaml.safe_load((SCENARIO / "community" / version / "rules.yml").read_text())
    return [{"text": r["text"], "hint": r.get("hint") or ""} for r in data["rules"]]


def file_blocks(version: str, inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path = SCENARIO / "community" / version / "domain-blocks.csv"
    wanted = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            wanted.append(
                {
                    "domain": row["#domain"],
                    "severity": row["#severity"],
                    "reject_media": row["#reject_media"] == "true",
                    "reject_reports": row["#reject_reports"] == "true",
                    "private_comment": "From community/domain-blocks.csv (managed by Ansible)",
                    "public_comment": row["#public_comment"],
                    "obfuscate": row["#obfuscate"] == "true",
                }
            )
    for item in inventory:
        wanted.append(
            {
                "domain": item["domain"],
                "severity": item["severity"],
                "reject_media": False,
                "reject_reports": False,
                "private_comment": item["private_comment"],
                "public_comment": "",
                "obfuscate": False,
            }
        )
    return sorted(wanted, key=lambda b: b["domain"])


def comparable_blocks(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in b.items() if k != "id"} for b in state["blocks"]]


def about_text(version: str) -> str:
    community = SCENARIO / "community" / version
    about = (community / "about.md").read_text().rstrip()
    coc = (community / "code-of-conduct.md").read_text().rstrip()
    return f"{about}\n\n## Code of conduct\n\n{coc}"


def assert_matches(host: Any, state: dict[str, Any], version: str, vars_: dict[str, Any]) -> None:
    assert state["rules"] == [
        {"id": r["id"], **want} for r, want in zip(state["rules"], file_rules(version), strict=True)
    ]
    listed = [{"text": r["text"], "hint": r["hint"]} for r in state["instance"]["rules"]]
    assert listed == file_rules(version)
    assert state["instance"]["title"] == vars_["instance_settings_title"]
    assert state["instance"]["description"] == vars_["instance_settings_short_description"]
    assert state["instance"]["contact"]["email"] == vars_["instance_settings_contact_email"]
    assert state["instance"]["contact"]["account"]["username"] == "admin"
    settings = state["settings"]
    assert settings["site_extended_description"] == about_text(version)
    privacy = (SCENARIO / "community" / version / "privacy-policy.md").read_text().rstrip()
    assert settings["site_terms"] == privacy
    assert settings["registrations_mode"] == "approved"
    assert settings["require_invite_text"] is True
    assert settings["content_cache_retention_period"] == 30
    assert settings["media_cache_retention_period"] == 7
    wanted_blocks = file_blocks(version, vars_["instance_settings_domain_blocks"])
    assert comparable_blocks(state) == wanted_blocks


def inventory_vars() -> dict[str, Any]:
    molecule = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
    return dict(molecule["provisioner"]["inventory"]["group_vars"]["mastodon_web"])


def web_domain() -> str:
    return str(inventory_vars()["instance_settings_web_domain"])


def v2_inventory_vars() -> dict[str, Any]:
    merged = inventory_vars()
    merged.update(yaml.safe_load((SCENARIO / "vars" / "v2.yml").read_text()))
    return merged


# --- the sequence ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_runs(host: Any) -> dict[str, Any]:
    """Check mode with v2, then apply v2, then apply v2 again; with snapshots in between."""
    before = server_state(host)
    rc_check, check_doc, check_text = playbook("--check", "--diff", "-e", v2_vars())
    assert rc_check == 0 and check_doc, check_text[-3000:]
    after_check = server_state(host)
    rc_apply, apply_doc, apply_text = playbook("--diff", "-e", v2_vars())
    assert rc_apply == 0 and apply_doc, apply_text[-3000:]
    rc_again, again_doc, again_text = playbook("-e", v2_vars())
    assert rc_again == 0 and again_doc, again_text[-3000:]
    return {
        "before": before,
        "after_check": after_check,
        "check": task_results(check_doc),
        "apply": task_results(apply_doc),
        "again_stats": again_doc["stats"][HOST],
        "after": server_state(host),
    }


def test_converged_api_equals_v1_files(host: Any) -> None:
    assert_matches(host, server_state(host), "v1", inventory_vars())


def test_converge_made_the_staff_and_the_owner(host: Any) -> None:
    roles = staff_roles(server_state(host)["roles"])
    assert roles == {"admin": "Owner", "alice": "Moderator", "bob": "Admin", "carol": "Moderator"}


def test_check_mode_changes_nothing(v2_runs: dict[str, Any]) -> None:
    assert v2_runs["after_check"] == v2_runs["before"]


def test_check_mode_predicts_exactly_what_apply_changes(v2_runs: dict[str, Any]) -> None:
    check, apply = v2_runs["check"], v2_runs["apply"]
    for fragment in ("Match the server rules", "Set the site settings", "Match domain blocks"):
        predicted = changes(check, fragment)
        assert predicted, f"v2 must change something in {fragment}"
        assert predicted == changes(apply, fragment), fragment
    # Staff: check mode reports the accounts to create. On apply the first pass finds the same
    # plan but writes nothing (deferred), tootctl creates the account, the second pass applies
    # the rest.
    predicted_staff = changes(check, "Set staff roles")
    first_pass = next(r for name, r in apply.items() if "Set staff roles" in name)
    assert first_pass["changed"] is False and first_pass["result"]["deferred"] is True
    assert first_pass["changes"] == predicted_staff
    approve = [r for name, r in apply.items() if "Approve the new staff accounts" in name]
    assert len(approve) == 1
    created = [
        item["item"]["username"] for item in approve[0].get("results", []) if item.get("changed")
    ]
    applied_staff = changes(apply, "Apply staff roles again")
    to_create = [c["username"] for c in predicted_staff if c["action"] == "create"]
    assert to_create == created == ["dave"]
    assert [c for c in predicted_staff if c["action"] != "create"] == applied_staff


def test_check_mode_shows_a_diff_per_changed_part(v2_runs: dict[str, Any]) -> None:
    for fragment in ("Match the server rules", "Set the site settings", "Match domain blocks"):
        result = next(r for name, r in v2_runs["check"].items() if fragment in name)
        assert result["changed"] is True
        assert result["diff"]["before"] != result["diff"]["after"]


def test_v2_edit_delete_reorder_and_new_block_are_applied(v2_runs: dict[str, Any]) -> None:
    rules = changes(v2_runs["apply"], "Match the server rules")
    assert {c["action"] for c in rules} == {"update", "remove"}
    blocks = changes(v2_runs["apply"], "Match domain blocks")
    assert {(c["action"], c["domain"]) for c in blocks} == {
        ("create", "bots.example"),
        ("update", "loud.example"),
        ("update", "evil.example"),
    }


def test_api_equals_v2_files_after_apply(host: Any, v2_runs: dict[str, Any]) -> None:
    assert_matches(host, v2_runs["after"], "v2", v2_inventory_vars())


def test_removed_staff_is_demoted_not_deleted(v2_runs: dict[str, Any]) -> None:
    assert staff_roles(v2_runs["after"]["roles"]) == {
        "admin": "Owner",
        "alice": "Admin",
        "bob": "",
        "carol": "Moderator",
        "dave": "Moderator",
    }


def test_second_apply_changes_nothing(v2_runs: dict[str, Any]) -> None:
    assert v2_runs["again_stats"]["changed"] == 0
    assert v2_runs["again_stats"]["failures"] == 0


def test_user_text_round_trips_unchanged(v2_runs: dict[str, Any]) -> None:
    state = v2_runs["after"]
    tricky_rule = file_rules("v2")[2]
    assert TRICKY in tricky_rule["text"] and "\\" in tricky_rule["text"]
    assert "日本語" in tricky_rule["text"] and '"' in tricky_rule["hint"]
    assert {"text": tricky_rule["text"], "hint": tricky_rule["hint"]} in [
        {"text": r["text"], "hint": r["hint"]} for r in state["rules"]
    ]
    assert "#{ENV['SECRET_KEY_BASE']}" in state["settings"]["site_extended_description"]
    assert "{{ lookup('env', 'HOME') }}" in state["settings"]["site_extended_description"]
    assert state["instance"]["title"] == 'Example University Social — v2 "quoted"'
    description = inventory_vars()["instance_settings_short_description"]
    assert state["instance"]["description"] == description
    evil = next(b for b in state["blocks"] if b["domain"] == "evil.example")
    assert evil["private_comment"] == "Seen in report #{42}"


# --- bad input -------------------------------------------------------------------------------


def _bad_community(tmp_path: Path, name: str, edit: Any) -> Path:
    target = tmp_path / name
    shutil.copytree(SCENARIO / "community" / "v2", target)
    edit(target)
    return target


def _long_rule(d: Path) -> None:
    rules = yaml.safe_load((d / "rules.yml").read_text())
    rules["rules"][1]["text"] = "x" * 301
    (d / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))


def _eleven_rules(d: Path) -> None:
    rules = {"rules": [{"text": f"Rule {i}", "hint": ""} for i in range(1, 12)]}
    (d / "rules.yml").write_text(yaml.safe_dump(rules))


def _malformed_csv(d: Path) -> None:
    with (d / "domain-blocks.csv").open("a") as handle:
        handle.write('broken.example,suspend,"unterminated\n')


def _not_a_domain(d: Path) -> None:
    with (d / "domain-blocks.csv").open("a") as handle:
        handle.write("not_a_domain,suspend,false,false,,false\n")


BAD_FILES = [
    ("over-long-rule", _long_rule, "rules.yml, line 4: rule 2: text is 301 characters"),
    ("eleventh-rule", _eleven_rules, "rules.yml, line 22: rule 11 of 11: at most 10 rules"),
    ("malformed-line", _malformed_csv, "domain-blocks.csv, line 5: malformed CSV line"),
    ("non-domain", _not_a_domain, "domain-blocks.csv, line 5: 'not_a_domain' is not a domain"),
]


@pytest.mark.parametrize(("name", "edit", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_community_file_fails_with_file_line_reason_and_changes_nothing(
    host: Any, v2_runs: dict[str, Any], tmp_path: Path, name: str, edit: Any, message: str
) -> None:
    directory = _bad_community(tmp_path, name, edit)
    rc, _doc, text = playbook(
        "-e", v2_vars(), "-e", json.dumps({"instance_settings_community_dir": str(directory)})
    )
    assert rc != 0
    assert f"{directory}/{message}" in text, text[-2000:]
    assert "Match the server rules" not in text
    assert server_state(host) == v2_runs["after"]


def test_unknown_setting_key_fails_and_changes_nothing(host: Any, v2_runs: dict[str, Any]) -> None:
    rc, _doc, text = playbook(
        "-e",
        v2_vars(),
        "-e",
        json.dumps({"instance_settings_site_settings": {"trends": False, "site_titel": "typo"}}),
    )
    assert rc != 0
    assert "instance_settings_site_settings: unknown setting key 'site_titel'" in text, text[-2000:]
    assert server_state(host) == v2_runs["after"]


# --- one Rails boot, and the parts' tags ----------------------------------------------------
# These run last: the tag tests leave the server with the v1 rules.

RAILS_BOOTS = "/tmp/instance-settings-rails-boots.log"
PART_TASKS = {
    "rules.rb": "Match the server rules",
    "settings.rb": "Set the site settings",
    "staff.rb": "Set staff roles",
}
BATCH_TASK = "Run the Rails scripts of all selected parts in one Rails boot"


def without_rules(state: dict[str, Any]) -> dict[str, Any]:
    """The server state without the rules (also listed by /api/v2/instance)."""
    rest = {k: v for k, v in state.items() if k != "rules"}
    rest["instance"] = {k: v for k, v in state["instance"].items() if k != "rules"}
    return rest


@pytest.fixture
def rails_boots(host: Any) -> Any:
    """Count `bin/rails runner` processes: a logging wrapper around the stand-in's bin/rails."""
    wrapper = f'#!/bin/sh\necho "$*" >> {RAILS_BOOTS}\nexec "$(dirname "$0")/rails.real" "$@"\n'
    run_in_container(
        host,
        f"cd {LIVE} && mv bin/rails bin/rails.real && printf %s {shlex_quote(wrapper)} > bin/rails"
        f" && chmod 0755 bin/rails && : > {RAILS_BOOTS} && chmod 0666 {RAILS_BOOTS}",
    )

    def count() -> list[str]:
        lines = run_in_container(host, f"cat {RAILS_BOOTS}").splitlines()
        return [line for line in lines if line.startswith("runner ")]

    yield count
    run_in_container(host, f"cd {LIVE} && mv bin/rails.real bin/rails")


def test_a_converged_run_boots_rails_once(v2_runs: dict[str, Any], rails_boots: Any) -> None:
    rc, doc, text = playbook("-e", v2_vars())
    assert rc == 0 and doc, text[-3000:]
    assert len(rails_boots()) == 1, rails_boots()
    assert doc["stats"][HOST]["changed"] == 0
    results = task_results(doc)
    batch = [r for name, r in results.items() if BATCH_TASK in name]
    assert len(batch) == 1 and not batch[0].get("skipped")
    for fragment in PART_TASKS.values():
        result = next(r for name, r in results.items() if fragment in name)
        assert result.get("reused_from_batch") is True, fragment
        assert result["changed"] is False and result["changes"] == []
    second = next(r for name, r in results.items() if "Apply staff roles again" in name)
    assert second.get("skipped") is True


def test_tags_of_one_part_apply_only_that_part(
    host: Any, v2_runs: dict[str, Any], rails_boots: Any
) -> None:
    v1 = json.dumps(
        {
            "instance_settings_community_dir": str(SCENARIO / "community" / "v1"),
            "instance_settings_title": "Not applied: the site part is not selected",
        }
    )
    rc, doc, text = playbook("--tags", "instance_settings_rules", "-e", v2_vars(), "-e", v1)
    assert rc == 0 and doc, text[-3000:]
    assert len(rails_boots()) == 1  # the rules part alone, no shared run
    results = task_results(doc)
    assert not any(BATCH_TASK in name for name in results)
    others = ("Set the site settings", "Set staff roles", "admin API token", "Match domain blocks")
    assert not any(fragment in name for name in results for fragment in others)
    rules = next(r for name, r in results.items() if "Match the server rules" in name)
    assert rules["changed"] is True and "reused_from_batch" not in rules
    state = server_state(host)
    assert [{"text": r["text"], "hint": r["hint"]} for r in state["rules"]] == file_rules("v1")
    assert without_rules(state) == without_rules(v2_runs["after"])


def test_skip_tags_leave_a_part_out_of_the_shared_run(host: Any, rails_boots: Any) -> None:
    rc, doc, text = playbook("--skip-tags", "instance_settings_rules", "-e", v2_vars())
    assert rc == 0 and doc, text[-3000:]
    assert len(rails_boots()) == 1
    assert doc["stats"][HOST]["changed"] == 0  # the v1 rules on the server stay
    results = task_results(doc)
    assert not any("Match the server rules" in name for name in results)
    site = next(r for name, r in results.items() if "Set the site settings" in name)
    assert site.get("reused_from_batch") is True
    rules = [{"text": r["text"], "hint": r["hint"]} for r in server_state(host)["rules"]]
    assert rules == file_rules("v1")
