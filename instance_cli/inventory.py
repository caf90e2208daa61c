"""Read existing inventories: `instance-cli validate` and `instance-cli list`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from instance_cli import cooperative, secrets, vaultpass
from instance_cli.answers import (
    MAX_RULE_HINT,
    MAX_RULE_TEXT,
    MAX_RULES,
    Answers,
    is_domain,
    parse_raw_text,
    validate,
)
from instance_cli.errors import InstanceCliError, ValidationError
from instance_cli.plan import connections_needed, make_plan
from instance_cli.render import GROUPS, VAULT_PATH, main_keys, render_text

MAIN = "group_vars/all/main.yml"
COMMUNITY_DOCS = ("code-of-conduct.md", "privacy-policy.md", "about.md")

_FORMATS = {
    "vault_mastodon_secret_key_base": (r"[0-9a-f]{128}", "128 hex characters"),
    "vault_mastodon_vapid_private_key": (r"[A-Za-z0-9_-]{43}=", "32 bytes in urlsafe base64"),
    "vault_mastodon_vapid_public_key": (r"[A-Za-z0-9_-]{87}=", "65 bytes in urlsafe base64"),
    "vault_mastodon_active_record_encryption_primary_key": (r"[A-Za-z0-9]{32}", "32 alphanumerics"),
    "vault_mastodon_active_record_encryption_deterministic_key": (
        r"[A-Za-z0-9]{32}",
        "32 alphanumerics",
    ),
    "vault_mastodon_active_record_encryption_key_derivation_salt": (
        r"[A-Za-z0-9]{32}",
        "32 alphanumerics",
    ),
}


def resolve(slug_or_path: str, inventories: Path) -> Path:
    path = Path(slug_or_path)
    if path.is_dir():
        return path
    candidate = inventories / slug_or_path
    if re.fullmatch(r"[a-z][a-z0-9-]{1,29}", slug_or_path) and candidate.is_dir():
        return candidate
    raise InstanceCliError(f"no institution at {slug_or_path} (nor {candidate})")


def _load_yaml(path: Path, rel: str, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{rel}: missing")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        problems.append(f"{rel}: unreadable ({type(exc).__name__})")
    return None


def _check_hosts(doc: Any, problems: list[str]) -> None:
    children = (doc or {}).get("all", {}).get("children") if isinstance(doc, dict) else None
    if not isinstance(children, dict):
        problems.append("hosts.yml: all.children: expected the function groups, got none")
        return
    for group, subs in GROUPS.items():
        node = children.get(group)
        if not isinstance(node, dict):
            problems.append(f"hosts.yml: all.children.{group}: missing group")
            continue
        leaves = [(f"{group}.children.{s}", (node.get("children") or {}).get(s)) for s in subs]
        for where, leaf in leaves or [(group, node)]:
            if not isinstance(leaf, dict) or not leaf.get("hosts"):
                problems.append(f"hosts.yml: all.children.{where}: expected at least one host")


def _check_main(
    main: Any,
    answers: Answers | None,
    path: Path,
    problems: list[str],
    member: cooperative.Membership | None = None,
) -> None:
    if not isinstance(main, dict):
        problems.append(f"{MAIN}: expected a mapping of variables")
        return
    # postgresql_connections_needed is an expression over these (the wiring); check its inputs.
    numbers = {
        k: main.get(k)
        for k in (
            "mastodon_web_concurrency",
            "mastodon_max_threads",
            "mastodon_sidekiq_concurrency",
            "postgresql_max_connections",
        )
    }
    ints = {k: v for k, v in numbers.items() if isinstance(v, int) and not isinstance(v, bool)}
    ports = main.get("mastodon_streaming_ports")
    if len(ints) < len(numbers) or not isinstance(ports, list):
        problems.append(
            f"{MAIN}: {'/'.join(numbers)}: expected numbers, mastodon_streaming_ports: a list"
        )
    else:
        needed = connections_needed(
            ints["mastodon_web_concurrency"],
            ints["mastodon_max_threads"],
            ints["mastodon_sidekiq_concurrency"],
            len(ports),
        )
        maximum = ints["postgresql_max_connections"]
        if needed >= maximum:
            problems.append(
                f"{MAIN}: postgresql_max_connections: expected more than the {needed} "
                "connections needed (postgresql_connections_needed, from Mastodon's concurrency), "
                f"got {maximum}"
            )
    for key in ("nginx_server_name", "mastodon_local_domain", "nginx_local_domain"):
        value = main.get(key)
        if not isinstance(value, str) or not is_domain(value):
            problems.append(f"{MAIN}: {key}: expected a DNS domain, got {value!r}"[:200])
    web = main.get("mastodon_web_domain")
    if web not in ("", None) and (not isinstance(web, str) or not is_domain(web)):
        problems.append(f"{MAIN}: mastodon_web_domain: expected a DNS domain or empty")
    known = set(main_keys())
    for key in main:
        if key not in known:
            problems.append(f"{MAIN}: {key}: unknown variable (not in the inventory contract)")
    for key in known - set(main):
        problems.append(f"{MAIN}: {key}: missing")
    if answers is None:
        return
    plan = make_plan(answers)
    expected = yaml.safe_load(render_text(answers, plan, member)[MAIN])
    for key, value in expected.items():
        if key in main and main[key] != value:
            problems.append(
                f"{MAIN}: {key}: expected {value!r} from answers.yml and the {plan.sizing.tier} "
                f"tier, got {main[key]!r}; re-run instance-cli new --force"[:300]
            )


def _check_rules(doc: Any, problems: list[str]) -> None:
    rel = "community/rules.yml"
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, list):
        problems.append(f"{rel}: rules: expected a list")
        return
    if not 1 <= len(rules) <= MAX_RULES:
        problems.append(f"{rel}: rules: expected 1 to {MAX_RULES} rules, got {len(rules)}")
    for i, rule in enumerate(rules, 1):
        if not isinstance(rule, dict):
            problems.append(f"{rel}: rules[{i}]: expected a mapping with text and hint")
            continue
        text, hint = rule.get("text"), rule.get("hint", "")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_RULE_TEXT:
            problems.append(f"{rel}: rules[{i}].text: expected 1 to {MAX_RULE_TEXT} characters")
        if not isinstance(hint, str) or len(hint) > MAX_RULE_HINT:
            problems.append(f"{rel}: rules[{i}].hint: expected at most {MAX_RULE_HINT} characters")
        for key in rule:
            if key not in ("text", "hint"):
                problems.append(f"{rel}: rules[{i}].{key}: unknown key (expected text, hint)")


def _check_vault(inv: Path, slug: str, option: str | None, problems: list[str]) -> None:
    path = inv / VAULT_PATH
    if not path.exists():
        problems.append(f"{VAULT_PATH}: missing")
        return
    pw_path, source = secrets.password_file_path(option, slug)
    if source == "default location" and not pw_path.exists():
        problems.append(f"{VAULT_PATH}: {vaultpass.missing_hint(slug, inv)}")
        return
    try:
        foreign = vaultpass.foreign_reason(pw_path, slug, inv.parent, inv)
    except InstanceCliError:
        foreign = None  # unreadable: reported below by the decryption
    if foreign is not None:
        problems.append(
            f"{VAULT_PATH}: the password file {pw_path} (from {source}) must not serve {slug}: "
            f"{foreign}; give {slug} its own password file and re-key its vault with "
            f"ansible-vault rekey --new-vault-password-file <{slug}'s own file>"
        )
    try:
        values = secrets.decrypt(path.read_bytes(), secrets.read_password(pw_path), VAULT_PATH)
    except InstanceCliError as exc:
        problems.append(f"{VAULT_PATH}: {exc} (password file from {source})")
        return
    for key in secrets.ALL_KEYS:
        value = values.get(key)
        if not isinstance(value, str):
            problems.append(f"{VAULT_PATH}: {key}: missing")
        elif key in secrets.GENERATED and not value:
            problems.append(f"{VAULT_PATH}: {key}: empty")
        elif key in _FORMATS and not re.fullmatch(_FORMATS[key][0], value):
            problems.append(f"{VAULT_PATH}: {key}: expected {_FORMATS[key][1]} (value not shown)")


def validate_inventory(inv: Path, vault_password_file: str | None = None) -> list[str]:
    """Check an institution's inventory; return what was checked, raise with EVERY problem."""
    problems: list[str] = []
    answers: Answers | None = None
    member: cooperative.Membership | None = None
    try:
        raw = parse_raw_text((inv / "answers.yml").read_text(encoding="utf-8"), "")
        coop = cooperative.find(inv.parent)
        member = cooperative.membership(coop, raw, inv.parent)
        answers = validate(cooperative.member_answers(coop, raw))
    except FileNotFoundError:
        problems.append("answers.yml: missing")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"answers.yml: unreadable ({type(exc).__name__})")
    except ValidationError as exc:
        problems += [f"answers.yml: {p}" for p in exc.problems]
    _check_hosts(_load_yaml(inv / "hosts.yml", "hosts.yml", problems), problems)
    main = _load_yaml(inv / MAIN, MAIN, problems)
    if main is not None:
        _check_main(main, answers, inv, problems, member)
    slug = str((main or {}).get("coop_institution_slug") or inv.name)
    _check_vault(inv, slug, vault_password_file, problems)
    _check_rules(_load_yaml(inv / "community/rules.yml", "community/rules.yml", problems), problems)
    for doc in COMMUNITY_DOCS:
        p = inv / "community" / doc
        if not p.is_file() or not p.read_text(encoding="utf-8", errors="replace").strip():
            problems.append(f"community/{doc}: missing or empty")
    if problems:
        raise ValidationError(problems, source=str(inv))
    return [
        "answers.yml schema",
        "hosts.yml groups",
        f"{MAIN} matches answers.yml and sizing (connections needed < max_connections)",
        f"{VAULT_PATH} decrypts and holds every secret",
        "community/rules.yml limits",
        "community documents present",
    ]


@dataclass(frozen=True)
class Row:
    slug: str
    domain: str
    tier: str
    version: str


def list_institutions(inventories: Path) -> list[Row]:
    if not inventories.is_dir():
        raise InstanceCliError(f"inventories directory {inventories} does not exist")
    rows = []
    for inv in sorted(p for p in inventories.iterdir() if p.is_dir()):
        if inv.name.startswith(".") or not (inv / MAIN).exists():
            continue
        problems: list[str] = []
        main = _load_yaml(inv / MAIN, MAIN, problems)
        if not isinstance(main, dict):
            rows.append(Row(inv.name, "?", "?", "? (main.yml unreadable)"))
            continue
        version = f"{main.get('mastodon_version', '?')} (configured)"
        state = inv / "state" / "last-deploy.yml"
        if state.exists():
            deployed = _load_yaml(state, "state/last-deploy.yml", problems)
            if isinstance(deployed, dict) and deployed.get("mastodon_version"):
                version = f"{deployed['mastodon_version']} (deployed {deployed.get('at', '?')})"
        rows.append(
            Row(
                str(main.get("coop_institution_slug", inv.name)),
                str(main.get("nginx_server_name", "?")),
                str(main.get("coop_sizing_tier", "?")),
                version,
            )
        )
    return rows
