"""The questionnaire: ONE schema from which prompts, answers-file keys, validation errors and
docs/answers-reference.md all come (the value types are in fieldtypes.py, the interactive
questionnaire in prompts.py, the generated reference in reference.py).

Answers are handled as a flat mapping keyed by dotted field names (``domains.local``); the
answers file nests them (``domains: {local: ...}``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from instance_cli.errors import InstanceCliError, ValidationError
from instance_cli.fieldtypes import (
    DOMAIN,
    EMAIL,
    LANGUAGE,
    OPT_DOMAIN,
    SLUG,
    SSH_KEY,
    USERNAME,
    AdminLogin,
    Answers,
    BadValue,
    Choice,
    Int,
    ListOf,
    OptionalInt,
    Records,
    Sub,
    Text,
    TimeZone,
    Type,
    is_domain,
    is_from_address,
    is_host_address,
    is_restic_repository,
    keyname,
    show,
    slugify,
    zone_for_country,
)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_ANSWERS_BYTES = 1_000_000
MAX_DEPTH = 20  # an answers file needs 5 levels of nesting
MAX_RULES = 10
MAX_RULE_TEXT = 300  # Mastodon rejects longer rule texts
# The release a new inventory starts with: roles/mastodon's default, the newest reviewed release
# of its release table (tests/unit/test_mastodon_releases.py keeps the three equal).
DEFAULT_MASTODON_VERSION = "v4.7.2"
MAX_RULE_HINT = 1000  # our own sanity limit
MIN_MODERATORS = 2  # Mastodon Server Covenant: more than one moderator


# --- the schema ---------------------------------------------------------------------------

REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One question. `question` is the prompt in plain words, `help` the line shown above it
    (with the answers-file key); `default` applies to answers files and interactively,
    `suggest` only interactively: a value derived from earlier answers that a person confirms
    with Enter (an answers file must still give a required field)."""

    name: str
    type: Type
    question: str
    help: str
    default: Any = REQUIRED  # a value, REQUIRED, or a callable of the answers so far
    ask_if: Callable[[Answers], bool] | None = None
    default_doc: str = ""
    suggest: Callable[[Answers], Any] | None = None
    suggest_doc: str = ""
    topic: str = ""  # the heading it is asked under; set by section()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def default_for(self, answers: Answers) -> Any:
        if callable(self.default):
            return self.default(answers)
        if isinstance(self.default, list):
            return [dict(x) if isinstance(x, dict) else x for x in self.default]
        return self.default

    def suggestion(self, answers: Answers) -> Any:
        """The interactive default: the suggestion if it is valid, else the default."""
        if self.suggest is not None:
            try:
                return self.type.check(self.suggest(answers))
            except BadValue:
                pass
        return REQUIRED if self.required else self.default_for(answers)


def section(topic: str, *fields: Field) -> tuple[Field, ...]:
    return tuple(dataclasses.replace(f, topic=topic) for f in fields)


BASELINE_RULES: tuple[dict[str, str], ...] = (
    {
        "text": "Treat everyone with respect and assume good intent.",
        "hint": "Disagree with ideas, not people. No harassment, slurs or personal attacks.",
    },
    {
        "text": "No discrimination, hate speech or incitement to violence.",
        "hint": "Including on grounds of origin, gender, sexuality, disability, religion or age.",
    },
    {
        "text": "Respect privacy: do not share other people's personal data without consent.",
        "hint": "This includes photos, addresses, grades and private messages.",
    },
    {
        "text": "Use content warnings for sensitive topics and describe your images.",
        "hint": "Alt text helps people using screen readers; content warnings let others choose.",
    },
    {
        "text": "No spam, advertising or automated posting without the moderators' agreement.",
        "hint": "",
    },
    {
        "text": "Follow the law and the institution's codes of conduct.",
        "hint": "Academic integrity applies here too: no sharing of exam answers.",
    },
)


def _local(a: Answers) -> str:
    return str(a.get("domains.local") or "")


def _at_local(user: str) -> Callable[[Answers], str]:
    return lambda a: f"{user}@{_local(a)}"


SERVICE_LABELS = ("social", "mastodon", "masto", "toot", "fedi")


def suggest_web_domain(a: Answers) -> str:
    """A handle domain that already names the service (social.example.edu) serves the web
    interface itself; an institution's own domain (example.edu) hardly can, so suggest
    social.<domain> (which needs the WebFinger redirect described in the help)."""
    local = _local(a)
    if not local or local.split(".")[0] in SERVICE_LABELS:
        return ""
    return f"social.{local}"


def suggest_short_name(a: Answers) -> str:
    name = str(a.get("institution.name") or "")
    return name if len(name) <= 40 else name[:41].rsplit(" ", 1)[0][:40]


RULE_SUBS = (
    Sub("text", Text(f"a rule of at most {MAX_RULE_TEXT} characters", max_len=MAX_RULE_TEXT),
        "Rule", "The rule itself"),
    Sub("hint", Text(f"an optional explanation of at most {MAX_RULE_HINT} characters",
                     min_len=0, max_len=MAX_RULE_HINT),
        "explanation", "Optional longer explanation shown under the rule", required=False,
        in_summary=False),
)  # fmt: skip
MODERATOR_SUBS = (
    Sub("username", USERNAME, "Mastodon username", "Mastodon username of the moderator"),
    Sub("email", EMAIL, "Email address", "Their institutional email address",
        suggest=lambda a, rec: f"{rec.get('username', '')}@{_local(a)}"),
    Sub("role", Choice("Moderator", "Admin"), "Role", "Mastodon role: Moderator or Admin",
        required=False, default="Moderator"),
)  # fmt: skip
ADMIN_SUBS = (
    Sub("name", AdminLogin(), "Unix login", "Unix login of the system administrator"),
    Sub("ssh_keys", ListOf(SSH_KEY, min_items=1, max_items=10), "SSH public keys",
        "Their SSH public keys (one or more, comma-separated)"),
)  # fmt: skip
HASHTAG = Text(
    "a hashtag like Bio101 (letters, digits, underscore)", max_len=100, pattern=r"#?[A-Za-z0-9_]+"
)
COURSE_SUBS = (
    Sub("name", SLUG, "Course name", "A short name, the folder of its snapshots (e.g. bio101)"),
    Sub("tags", ListOf(HASHTAG, min_items=1, max_items=10), "Course hashtags",
        "The hashtags its posts carry (one or more, comma-separated)"),
)  # fmt: skip


def _sso(mode: str) -> Callable[[Answers], bool]:
    return lambda a: a.get("sso.mode") == mode


HTTPS_OR_EMPTY = r"https://[^\s]{3,}"

SCHEMA: tuple[Field, ...] = (
    *section("The institution",
        Field("institution.name", Text("the institution's full name", max_len=120),
              "Full name of the institution", "For example Example University"),
        Field("institution.short_name", Text("a short name of at most 40 characters", max_len=40),
              "Short name", "Used in titles, e.g. Example",
              suggest=suggest_short_name, suggest_doc="the full name"),
        Field("institution.slug", SLUG, "Directory name of its inventory",
              "The directory under inventories/, derived from the short name",
              default=lambda a: slugify(str(a.get("institution.short_name", ""))),
              default_doc="derived from institution.short_name"),
    ),
    *section("Domains",
        Field("domains.local", DOMAIN, "Domain in people's handles",
              "@alice@DOMAIN; it can never change later"),
        Field("domains.web", OPT_DOMAIN, "Domain of the web interface",
              "If different from the handle domain (e.g. social.example.edu), the handle "
              "domain must redirect /.well-known/webfinger to it; '-' = the same domain",
              default="", suggest=suggest_web_domain,
              suggest_doc="`social.<domains.local>`, unless that already starts with social., "
              "mastodon. ..."),
    ),
    *section("Contacts",
        Field("admin.name", Text("a contact name", max_len=120),
              "Team or person running the server", "Shown as the server's contact",
              suggest=lambda a: f"{a.get('institution.name', '')} IT Services",
              suggest_doc="`<institution.name> IT Services`"),
        Field("admin.email", EMAIL, "Their contact email",
              "Shown on the server and used for the TLS certificates",
              suggest=_at_local("mastodon"), suggest_doc="`mastodon@<domains.local>`"),
        Field("owner.username", USERNAME, "Username of the Owner account",
              "The Mastodon account created with the Owner role on install", default="admin"),
    ),
    *section("Sign-ups and federation",
        Field("users.expected", Int(1, 100_000, "a number of users"),
              "Expected number of users",
              "Sets the sizing tier: up to 500 small, 2000 medium, 10000 large",
              suggest=lambda a: 500, suggest_doc="`500`"),
        Field("registrations.mode", Choice("open", "approval", "closed"), "Who can sign up",
              "open, approval (moderators approve) or closed (invites only)",
              default="approval"),
        Field("registrations.email_domains", ListOf(DOMAIN, max_items=50),
              "Email domains allowed to sign up", "Comma-separated; '-' = anyone",
              default=lambda a: [a["domains.local"]] if "domains.local" in a else [],
              default_doc="[domains.local]"),
        Field("languages", ListOf(LANGUAGE, min_items=1, max_items=20),
              "Languages of the community", "ISO 639-1 codes, comma-separated; the first is "
              "the default", default=["en"]),
        Field("federation.mode", Choice("open", "allowlist"), "Federation",
              "open: talk to any server; allowlist: only servers you approve", default="open"),
    ),
    *section("Moderation team",
        Field("moderators", Records(MODERATOR_SUBS, min_items=MIN_MODERATORS, max_items=50,
                                    what="moderators", item="moderator"),
              "Moderators", "People besides the owner; at least 2, per the Server Covenant"),
    ),
    *section("Privacy policy",
        Field("privacy.dpo_name", Text("a name", max_len=120), "Data protection officer",
              "Name or office, for the privacy policy",
              suggest=lambda a: f"Data Protection Officer of {a.get('institution.name', '')}",
              suggest_doc="`Data Protection Officer of <institution.name>`"),
        Field("privacy.dpo_email", EMAIL, "Data protection officer's email",
              "For the privacy policy", suggest=_at_local("dpo"),
              suggest_doc="`dpo@<domains.local>`"),
        Field("privacy.jurisdiction", Text("a country or region", max_len=80),
              "Country or region whose data-protection law applies", "For example Germany"),
        Field("privacy.supervisory_authority", Text("an authority's name", max_len=200),
              "Supervisory authority", "The data-protection authority people may complain to"),
        Field("privacy.supervisory_authority_url",
              Text("an https:// address, or empty", min_len=0, max_len=300,
                   pattern=HTTPS_OR_EMPTY),
              "Web address of that authority", "An https:// address, or empty", default=""),
        Field("retention.ip_days", Int(1, 365, "a number of days"), "Days to keep IP addresses",
              "Upstream's default is 365", default=7),
        Field("retention.session_days", Int(1, 365, "a number of days"),
              "Days to keep inactive login sessions", "Upstream's default is 365", default=30),
        Field("retention.media_cache_days", OptionalInt(1, 365, "a number of days"),
              "Days to cache media from other servers", "Empty = the sizing tier's value",
              default=None),
        Field("analytics.mode", Choice("off", "opt-in"), "Course analytics",
              "opt-in: teachers may take weekly snapshots of public course-hashtag posts, "
              "naming only accounts that opt in (docs/analytics.md)", default="off"),
        Field("analytics.retention_days", Int(1, 365, "a number of days"),
              "Days to keep course analytics snapshots", "One term is about 120",
              default=120, ask_if=lambda a: a.get("analytics.mode") == "opt-in"),
        Field("analytics.publish", Choice("private", "staff"), "Who opens the snapshots",
              "private: only the IT staff, on the server; staff: moderators and admins, in the "
              "browser while signed in to Mastodon", default="private",
              ask_if=lambda a: a.get("analytics.mode") == "opt-in"),
        Field("analytics.courses", Records(COURSE_SUBS, min_items=0, max_items=50,
                                           what="courses", item="course"),
              "Courses", "Each course's name and hashtags; the weekly snapshots cover these",
              default=[], ask_if=lambda a: a.get("analytics.mode") == "opt-in"),
    ),
    *section("Backups",
        Field("backup.repository",
              Text("a restic repository like sftp:user@host:/path, s3:..., rest:... or /path",
                   max_len=300, predicate=is_restic_repository),
              "Where backups go", "A restic repository URL",
              suggest=lambda a: f"sftp:backup@backup.{_local(a)}:/srv/restic/"
              f"{a.get('institution.slug', '')}",
              suggest_doc="`sftp:backup@backup.<domains.local>:/srv/restic/<slug>`"),
        Field("backup.retention_days", Int(1, 3650, "a number of days"),
              "Days to keep backups", "Stated in the privacy policy", default=30),
        Field("backup.escrow", Text("a place off this server", max_len=300),
              "Where the vault password and the restic password are also kept",
              "Off this server: a backup nobody can decrypt is no backup",
              default="the IT service's password manager, and a sealed copy in the IT office safe"),
    ),
    *section("Outgoing mail",
        Field("smtp.host", DOMAIN, "Mail relay for outgoing email", "The SMTP host",
              suggest=lambda a: f"smtp.{_local(a)}", suggest_doc="`smtp.<domains.local>`"),
        Field("smtp.port", Int(1, 65535, "a TCP port"), "Mail relay port", "Usually 587",
              default=587),
        Field("smtp.login", Text("a login name, or empty", min_len=0, max_len=200),
              "Mail relay login", "Empty if the relay needs none; the password is asked "
              "separately", default=""),
        Field("smtp.from_address",
              Text("an address like 'Name <notifications@example.edu>'", max_len=254,
                   predicate=is_from_address),
              "Sender of notification emails", "Name <address> or an address",
              default=lambda a: f"{a.get('institution.short_name', 'Mastodon')} Social "
              f"<notifications@{a.get('domains.local', 'example.edu')}>",
              default_doc="`<short name> Social <notifications@domains.local>`"),
    ),
    *section("Single sign-on",
        Field("sso.mode", Choice("none", "oidc", "saml"), "Single sign-on",
              "none, oidc or saml", default="none"),
        Field("sso.oidc.display_name", Text("a button label, or empty", min_len=0, max_len=60),
              "Label of the sign-in button", "Shown on the login page", default="",
              ask_if=_sso("oidc")),
        Field("sso.oidc.issuer",
              Text("an https:// issuer URL, or empty", min_len=0, max_len=300,
                   pattern=HTTPS_OR_EMPTY),
              "OIDC issuer URL", "Required for oidc", default="", ask_if=_sso("oidc")),
        Field("sso.oidc.client_id", Text("a client id, or empty", min_len=0, max_len=200),
              "OIDC client id", "Required for oidc; the secret is asked separately",
              default="", ask_if=_sso("oidc")),
        Field("sso.saml.idp_sso_url",
              Text("an https:// URL, or empty", min_len=0, max_len=300, pattern=HTTPS_OR_EMPTY),
              "SAML single sign-on URL of the identity provider", "Required for saml",
              default="", ask_if=_sso("saml")),
        Field("sso.saml.cert_fingerprint",
              Text("a SHA-1/SHA-256 fingerprint like AB:CD:..., or empty", min_len=0,
                   max_len=100,
                   pattern=r"([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{2}:){31}"
                   r"[0-9A-Fa-f]{2}"),
              "Certificate fingerprint of the identity provider", "Required for saml",
              default="", ask_if=_sso("saml")),
    ),
    *section("Server rules",
        Field("rules", Records(RULE_SUBS, min_items=1, max_items=MAX_RULES, what="rules",
                               item="rule"),
              "Server rules", "Start from the cooperative's baseline; edit, add or remove",
              default=[dict(r) for r in BASELINE_RULES], default_doc="the cooperative baseline"),
    ),
    *section("The server",
        Field("admins", Records(ADMIN_SUBS, min_items=1, max_items=20, what="admin users",
                                item="system administrator"),
              "System administrators", "People with SSH access to the server"),
        Field("host.address", Text("an IP address or DNS name", max_len=253,
                                   predicate=is_host_address),
              "Address Ansible connects to", "An IP address or DNS name",
              suggest=lambda a: a.get("domains.web") or _local(a),
              suggest_doc="domains.web, else domains.local"),
        Field("host.name", SLUG, "Inventory name of the server", "Its name in hosts.yml",
              default=lambda a: f"{a.get('institution.slug', 'instance')}-1"[:30],
              default_doc="`<slug>-1`"),
        Field("host.timezone", TimeZone(), "Server time zone", "A name of the tz database",
              default="Etc/UTC",
              suggest=lambda a: zone_for_country(str(a.get("privacy.jurisdiction", ""))),
              suggest_doc="the jurisdiction's zone in the tz database"),
        Field("mastodon.version",
              Text("a Mastodon release tag like v4.7.2", max_len=20,
                   pattern=r"v[0-9]+\.[0-9]+\.[0-9]+"),
              "Mastodon release to install", "A release tag", default=DEFAULT_MASTODON_VERSION),
    ),
)  # fmt: skip

FIELDS: dict[str, Field] = {f.name: f for f in SCHEMA}
GROUPS: frozenset[str] = frozenset(
    ".".join(f.name.split(".")[:i]) for f in SCHEMA for i in range(1, f.name.count(".") + 1)
)

# Secrets are never part of the answers file; they come from the environment or a hidden
# prompt and go straight into the vault.
SECRET_ENV = {
    "smtp.password": "INSTANCE_CLI_SMTP_PASSWORD",
    "sso.oidc.client_secret": "INSTANCE_CLI_OIDC_CLIENT_SECRET",
}
SECRET_QUESTIONS = {
    "smtp.password": "SMTP password",
    "sso.oidc.client_secret": "OIDC client secret",
}


def topics() -> list[tuple[str, list[Field]]]:
    """The schema's sections in order: (heading, fields)."""
    out: list[tuple[str, list[Field]]] = []
    for f in SCHEMA:
        if not out or out[-1][0] != f.topic:
            out.append((f.topic, []))
        out[-1][1].append(f)
    return out


# --- validation ---------------------------------------------------------------------------


def flatten(raw: Mapping[Any, Any], problems: list[str], prefix: str = "") -> Answers:
    """Nested answers mapping -> flat dotted mapping; unknown keys become problems."""
    flat: Answers = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str):
            problems.append(f"{keyname(str(name))}: unknown key (keys must be text)")
            continue
        if name in FIELDS:
            flat[name] = value
        elif name in GROUPS:
            if isinstance(value, dict):
                flat.update(flatten(value, problems, prefix=f"{name}."))
            else:
                subkeys = sorted(
                    {
                        f.name[len(name) + 1 :].split(".")[0]
                        for f in SCHEMA
                        if f.name.startswith(name + ".")
                    }
                )
                problems.append(
                    f"{name}: expected a mapping with keys {', '.join(subkeys)}, got {show(value)}"
                )
        else:
            if name in SECRET_ENV:
                problems.append(
                    f"{name}: secrets do not belong in answers files; "
                    f"set {SECRET_ENV[name]} in the environment instead"
                )
                continue
            close = difflib.get_close_matches(name, [*FIELDS, *GROUPS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{keyname(name)}: unknown key{hint}")
    return flat


def validate_records(
    name: str, rtype: Records, value: list[Any], problems: list[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"{name}[{i + 1}]"
        if not isinstance(item, dict):
            keys = ", ".join(s.name for s in rtype.subs)
            problems.append(f"{where}: expected a mapping with keys {keys}, got {show(item)}")
            continue
        known = {s.name for s in rtype.subs}
        for k in item:
            if k not in known:
                problems.append(
                    f"{where}.{keyname(str(k))}: unknown key (expected {', '.join(sorted(known))})"
                )
        rec: dict[str, Any] = {}
        for sub in rtype.subs:
            if sub.name not in item:
                if sub.required:
                    problems.append(f"{where}.{sub.name}: missing, expected {sub.type.expected}")
                else:
                    rec[sub.name] = sub.default
                continue
            try:
                rec[sub.name] = sub.type.check(item[sub.name])
            except BadValue as exc:
                problems.append(f"{where}.{sub.name}: expected {exc}, got {show(item[sub.name])}")
        out.append(rec)
    return out


def check_field(f: Field, value: Any, problems: list[str]) -> Any:
    try:
        checked = f.type.check(value)
    except BadValue as exc:
        problems.append(f"{f.name}: expected {exc}, got {show(value)}")
        if not (isinstance(f.type, Records) and isinstance(value, list)):
            return None
        # a list of the wrong length: its entries' own problems are reported too
        validate_records(f.name, f.type, value, problems)
        return None
    if isinstance(f.type, Records):
        checked = validate_records(f.name, f.type, checked, problems)
    return checked


def cross_checks(a: Answers, problems: list[str]) -> None:
    """Rules between fields. Only runs on values that passed their own check."""
    if a.get("domains.web") and a.get("domains.web") == a.get("domains.local"):
        problems.append("domains.web: leave empty when it equals domains.local")
    mods = a.get("moderators") or []
    names = [str(m.get("username", "")).lower() for m in mods]
    if len(set(names)) != len(names):
        problems.append("moderators: expected distinct usernames, got a duplicate")
    owner = str(a.get("owner.username", "")).lower()
    if owner and owner in names:
        problems.append(
            f"moderators: expected people other than the owner, got owner.username {owner}"
        )
    admins = [str(x.get("name", "")) for x in a.get("admins") or []]
    if len(set(admins)) != len(admins):
        problems.append("admins: expected distinct names, got a duplicate")
    mode = a.get("sso.mode")
    if mode == "oidc":
        for key in ("sso.oidc.issuer", "sso.oidc.client_id", "sso.oidc.display_name"):
            if not a.get(key):
                problems.append(f"{key}: required when sso.mode is oidc")
    if mode == "saml":
        for key in ("sso.saml.idp_sso_url", "sso.saml.cert_fingerprint"):
            if not a.get(key):
                problems.append(f"{key}: required when sso.mode is saml")


def _field_of(problem: str) -> str:
    """The schema field a problem message starts with: 'rules[2].text: ...' -> 'rules'."""
    return re.split(r"[:\[]", problem, maxsplit=1)[0]


def validate(raw: Any) -> Answers:
    """Validate a parsed answers document; raise ValidationError listing EVERY problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ValidationError([f"expected a mapping of answers at the top level, got {show(raw)}"])
    given = flatten(raw, problems)
    answers: Answers = {}
    for f in SCHEMA:
        if f.name in given:
            value = check_field(f, given[f.name], problems)
            if value is not None or not f.required:
                answers[f.name] = value
        elif f.required:
            problems.append(f"{f.name}: missing, expected {f.type.expected}")
        else:
            answers[f.name] = f.default_for(answers)
    # Cross-field rules run even when some fields are invalid (every problem at once), but a
    # field that already has a problem of its own gets no second one.
    failed = {_field_of(p) for p in problems}
    checked = {k: v for k, v in answers.items() if k not in failed}
    cross: list[str] = []
    cross_checks(checked, cross)
    problems += [p for p in cross if _field_of(p) not in failed]
    if problems:
        raise ValidationError(problems)
    return answers


def load_answers_file(path: Path) -> Answers:
    """Read, parse and validate an answers file; every failure is an InstanceCliError."""
    return validate_source(load_raw_answers(path), path.name)


def validate_source(raw: Any, source: str) -> Answers:
    """validate(), with the problems attributed to the file they came from."""
    try:
        return validate(raw)
    except ValidationError as exc:
        raise ValidationError(exc.problems, source=source) from None


def load_raw_answers(path: Path) -> Any:
    """Read and parse an answers file, not yet validated (a cooperative's baseline may still be
    merged under it); every failure is an InstanceCliError."""
    try:
        size = path.stat().st_size
        if size > MAX_ANSWERS_BYTES:
            raise ValidationError(
                [f"file is {size} bytes; expected at most {MAX_ANSWERS_BYTES}"], source=path.name
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationError(["expected UTF-8 text"], source=path.name) from None
    except OSError as exc:
        raise InstanceCliError(f"cannot read answers file {path}: {exc.strerror}") from None
    return parse_raw_text(text, path.name)


def _check_depth(text: str) -> None:
    """Refuse absurdly nested documents before building them: deep recursion in the YAML
    constructor can exhaust the C stack. Walking the parser's events is flat and cheap."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise RecursionError
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def parse_answers_text(text: str, source: str) -> Answers:
    return validate_source(parse_raw_text(text, source), source)


def parse_raw_text(text: str, source: str) -> Any:
    try:
        _check_depth(text)
        raw = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml when present)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ValidationError([f"not valid YAML{where}: {reason}"], source=source) from None
    except RecursionError:
        raise ValidationError(
            [f"expected at most {MAX_DEPTH} levels of nesting, got more"], source=source
        ) from None
    return raw


def nest(answers: Answers) -> dict[str, Any]:
    """Flat dotted answers -> nested mapping, in schema order (for answers.yml)."""
    out: dict[str, Any] = {}
    for f in SCHEMA:
        if f.name not in answers:
            continue
        node = out
        *parents, leaf = f.name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = answers[f.name]
    return out


__all__ = [
    "BASELINE_RULES",
    "FIELDS",
    "GROUPS",
    "MAX_RULES",
    "MAX_RULE_HINT",
    "MAX_RULE_TEXT",
    "REQUIRED",
    "RULE_SUBS",
    "SCHEMA",
    "SECRET_ENV",
    "SECRET_QUESTIONS",
    "Answers",
    "BadValue",
    "Choice",
    "Field",
    "Int",
    "ListOf",
    "OptionalInt",
    "Records",
    "Text",
    "Type",
    "is_domain",
    "keyname",
    "load_answers_file",
    "nest",
    "parse_answers_text",
    "show",
    "slugify",
    "topics",
    "validate",
]
