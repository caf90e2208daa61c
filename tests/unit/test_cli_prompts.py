"""Issue 11, item 6: the interactive questionnaire asks in plain words, grouped by topic, with
defaults derived from earlier answers, and ends with a summary and a confirmation before
anything is written."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from instance_cli import answers as A

Run = Callable[..., Any]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExampleKey00 ops@x"
SMTP_SECRET = "smtp-Secret-Value-789"

# Two moderators and one admin: what a person types; "" is Enter (accept the default).
TYPED = [
    "Acme Institute",  # full name
    "",  # short name (= full name)
    "",  # directory name (acme-institute)
    "acme.edu",  # handle domain
    "",  # web domain (social.acme.edu)
    "", "",  # team and its email (Acme Institute IT Services, mastodon@acme.edu)
    "",  # owner username
    "",  # expected users
    "", "", "", "",  # sign-ups, email domains, languages, federation
    "alice", "", "",  # moderator 1: username, email (alice@acme.edu), role
    "bob", "", "Admin",  # moderator 2
    "",  # no third moderator
    "", "",  # data protection officer and email
    "Germany", "Landesbeauftragte fuer Datenschutz", "",  # jurisdiction, authority, its URL
    "", "", "",  # retention
    "",  # course analytics (off)
    "", "", "",  # backup repository, retention and where the passwords are also kept
    "", "", "", "",  # smtp host, port, login, from
    "",  # sso
    "",  # rules: done
    "opsadmin", KEY, "",  # admin login, keys, no second admin
    "", "", "", "",  # host address, name, time zone, version
    SMTP_SECRET,  # the hidden SMTP password
]  # fmt: skip


def session(run: Run, out: Path, confirm: str) -> Any:
    text = "\n".join([*TYPED, confirm]) + "\n"
    return run("new", "--output-dir", str(out), input=text)


def test_questions_are_plain_words_grouped_by_topic_with_the_key_in_the_help(
    run: Run, tmp_path: Path
) -> None:
    result = session(run, tmp_path / "inventories", "no")
    out = result.output
    for f in A.SCHEMA:
        if f.ask_if is None:
            assert f"({f.name})" in out, f"the key {f.name} is not shown in the help"
        # no prompt starts with a dotted key any more
        assert not re.search(rf"^{re.escape(f.name)}\b", out, re.M), f.name
    assert not re.search(r"^\w+\[\d+\]\.\w+", out, re.M), "a raw record key is a prompt"
    assert "(moderators[1].username)" in out
    for heading in ("The institution", "Domains", "Moderation team", "Privacy policy", "Backups",
                    "Outgoing mail", "Server rules", "The server"):  # fmt: skip
        assert f"== {heading} ==" in out, heading
    assert "Full name of the institution:" in out
    assert "Moderator 1, Mastodon username:" in out
    assert "Add another moderator?" in out
    assert "SMTP password (hidden" in out
    assert out.index("== The institution ==") < out.index("== Domains ==")


def test_summary_then_no_writes_nothing(run: Run, tmp_path: Path, isolated_env: Path) -> None:
    out = tmp_path / "inventories"
    result = session(run, out, "no")
    assert result.exit_code == 1, result.output
    summary = result.output[result.output.index("Summary") :]
    assert "== The institution ==" in summary
    assert "Full name of the institution: Acme Institute" in summary
    assert "Domain of the web interface: social.acme.edu" in summary
    assert "1. alice, alice@acme.edu, Moderator" in summary
    assert "2. bob, bob@acme.edu, Admin" in summary
    assert "Server time zone: Europe/Berlin" in summary
    assert "Days to cache media from other servers: (empty: the sizing tier's value)" in summary
    assert "Web address of that authority: (empty)" in summary
    assert f"Write {out / 'acme-institute'}/?" in summary
    assert SMTP_SECRET not in result.output
    assert "SMTP password" not in summary
    assert "Nothing was written" in result.stderr
    assert not out.exists()
    assert not isolated_env.exists()


def test_accepting_the_summary_writes_with_derived_defaults(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "inventories"
    result = session(run, out, "")  # Enter: yes
    assert result.exit_code == 0, result.output
    typed = [t for t in TYPED if t]
    assert len(typed) == 10 and len(TYPED) - len(typed) == 36, "most answers are Enter"
    answers = yaml.safe_load((out / "acme-institute" / "answers.yml").read_text())
    assert answers["institution"] == {"name": "Acme Institute", "short_name": "Acme Institute",
                                      "slug": "acme-institute"}  # fmt: skip
    assert answers["domains"] == {"local": "acme.edu", "web": "social.acme.edu"}
    assert answers["admin"] == {"name": "Acme Institute IT Services", "email": "mastodon@acme.edu"}
    assert answers["users"]["expected"] == 500
    assert [m["email"] for m in answers["moderators"]] == ["alice@acme.edu", "bob@acme.edu"]
    assert answers["privacy"]["dpo_name"] == "Data Protection Officer of Acme Institute"
    assert answers["privacy"]["dpo_email"] == "dpo@acme.edu"
    assert (
        answers["backup"]["repository"] == "sftp:backup@backup.acme.edu:/srv/restic/acme-institute"
    )
    assert answers["smtp"]["host"] == "smtp.acme.edu"
    assert answers["host"]["address"] == "social.acme.edu"
    assert answers["host"]["timezone"] == "Europe/Berlin"
    assert SMTP_SECRET not in result.output


def test_a_handle_domain_that_is_already_a_service_name_keeps_one_domain(
    run: Run, tmp_path: Path
) -> None:
    typed = list(TYPED)
    typed[3] = "social.acme.edu"
    text = "\n".join([*typed, "yes"]) + "\n"
    out = tmp_path / "inventories"
    result = run("new", "--output-dir", str(out), input=text)
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((out / "acme-institute" / "answers.yml").read_text())
    assert answers["domains"] == {"local": "social.acme.edu", "web": ""}
    assert answers["admin"]["email"] == "mastodon@social.acme.edu"


def test_an_existing_institution_is_refused_before_the_secrets_and_summary(
    run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "inventories"
    assert session(run, out, "yes").exit_code == 0
    result = session(run, out, "yes")
    assert result.exit_code == 1
    assert "already exists; use --force" in result.stderr
    assert "SMTP password (hidden" not in result.output
    assert "Summary" not in result.output


def test_interactive_answers_get_the_same_checks_as_answers_files(run: Run, tmp_path: Path) -> None:
    typed = list(TYPED)
    at = typed.index("opsadmin")
    typed[at:at] = ["root"]  # refused, then opsadmin
    tz = len(typed) - 3  # host address, name, [time zone], version, secret
    typed[tz:tz + 1] = ["Europe/Pariss", "Europe/Paris"]  # fmt: skip
    out = tmp_path / "inventories"
    result = run("new", "--output-dir", str(out), input="\n".join([*typed, "yes"]) + "\n")
    assert result.exit_code == 0, result.output
    assert (
        "Invalid: expected a personal login, not the system or service account root (root, "
        'daemon, www-data, postgres, redis, mastodon, ... are reserved), got "root"'
    ) in result.output
    assert "(did you mean Europe/Paris?)" in result.output
    answers = yaml.safe_load((out / "acme-institute" / "answers.yml").read_text())
    assert answers["admins"][0]["name"] == "opsadmin"
    assert answers["host"]["timezone"] == "Europe/Paris"
