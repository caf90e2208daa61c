"""Controller-side parsers and validators of the role instance_settings.

Every filter either returns normalised data or raises an error whose message names the
FILE (or inventory variable), the LINE where one exists, and the REASON. The role runs
them in validate.yml, before it touches the server, so bad input changes nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import yaml
from ansible.errors import AnsibleFilterError  # type: ignore[import-untyped]


def _role_module_utils(name: str) -> ModuleType:
    """The role's module_utils/<name>.py, loaded by path.

    Modules import it as `ansible.module_utils.<name>` (AnsiballZ ships it to the host), but
    Ansible puts a standalone role's module_utils/ only on the module search path, not on the
    controller's Python path: a filter or action plugin importing `ansible.module_utils.<name>`
    fails with "No module named ..." (only collections give plugins an import path). So the
    controller side loads the same file from next to this plugin's directory, once per process.
    """
    key = f"_instance_settings_role_module_utils.{name}"
    if key not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "module_utils" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the role's module_utils file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


if TYPE_CHECKING:  # mypy reads the same file by its path in the repository
    from roles.instance_settings.module_utils import instance_settings_domain_block as _block
else:
    _block = _role_module_utils("instance_settings_domain_block")

RULES_MAX = 10
RULE_TEXT_MAX = 300  # Rule::TEXT_SIZE_LIMIT upstream
RULE_KEYS = frozenset({"text", "hint"})
SEVERITIES = ("silence", "suspend", "noop")
STAFF_ROLES = ("Admin", "Moderator")
STAFF_MIN = 2
REGISTRATIONS_MODES = ("open", "approved", "none")

# Columns of Mastodon's admin domain-block CSV export/import, in export order.
BLOCKLIST_COLUMNS = (
    "#domain",
    "#severity",
    "#reject_media",
    "#reject_reports",
    "#public_comment",
    "#obfuscate",
)
BLOCK_BOOL_FIELDS = _block.BLOCK_BOOL_FIELDS
BLOCK_TEXT_FIELDS = _block.BLOCK_TEXT_FIELDS
BLOCK_KEYS = frozenset({"domain", *_block.BLOCK_FIELDS})
ALLOW_KEYS = frozenset({"domain"})

# Extra site settings an inventory may set through instance_settings_site_settings, with the
# Python type each must have. The settings the role manages through dedicated variables
# (title, descriptions, contact, registrations, terms, retention) are not accepted here, so
# one value cannot be set in two places.
EXTRA_SETTINGS: dict[str, tuple[type, ...]] = {
    "timeline_preview": (bool,),
    "activity_api_enabled": (bool,),
    "peers_api_enabled": (bool,),
    "preview_sensitive_media": (bool,),
    "profile_directory": (bool,),
    "trends": (bool,),
    "trendable_by_default": (bool,),
    "show_domain_blocks": (str,),
    "show_domain_blocks_rationale": (str,),
    "noindex": (bool,),
    "captcha_enabled": (bool,),
    "status_page_url": (str,),
    "backups_retention_period": (int,),
}
SHOW_DOMAIN_BLOCKS_CHOICES = ("disabled", "users", "all")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ansible-core has no type information, so its error class is Any to mypy.
class InstanceSettingsError(AnsibleFilterError):  # type: ignore[misc]
    """Bad input, with the place it was found."""


def _fail(where: str, line: int | None, reason: str) -> InstanceSettingsError:
    place = f"{where}, line {line}" if line is not None else where
    return InstanceSettingsError(f"{place}: {reason}")


def normalize_domain(value: Any) -> str:
    """Return the ASCII (punycode) form of a host name, or raise ValueError saying why not."""
    if not isinstance(value, str):
        raise ValueError(f"domain must be a string, got {type(value).__name__}")
    raw = value.strip()
    if not raw:
        raise ValueError("domain is empty")
    lowered = raw.lower().rstrip(".")
    try:
        ascii_name = lowered.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{raw!r} is not a domain ({exc})") from None
    if len(ascii_name) > 253:
        raise ValueError(f"{raw!r} is not a domain (longer than 253 characters)")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{raw!r} is not a domain (needs at least two labels, like example.org)")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(
                f"{raw!r} is not a domain (label {label!r}: letters, digits and inner hyphens"
                " only, 1-63 characters)"
            )
    if labels[-1].isdigit():
        raise ValueError(f"{raw!r} is not a domain (the top-level label is numeric)")
    return ascii_name


# ---------------------------------------------------------------------------------------------
# community/rules.yml


def _node_line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def parse_rules(text: str, path: str = "community/rules.yml") -> list[dict[str, str]]:
    """Parse rules.yml into [{text, hint}] in display order, or raise with line and reason."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = int(mark.line) + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(path, line, f"not valid YAML: {problem}") from None
    if root is None:
        raise _fail(path, None, "the file is empty; expected a mapping with a 'rules' list")
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, _node_line(root), "expected a mapping with a 'rules' list")
    rules_node = None
    for key_node, value_node in root.value:
        if key_node.value != "rules":
            raise _fail(path, _node_line(key_node), f"unknown key {key_node.value!r}; only 'rules'")
        rules_node = value_node
    if rules_node is None:
        raise _fail(path, _node_line(root), "missing the 'rules' list")
    if isinstance(rules_node, yaml.ScalarNode) and rules_node.tag.endswith(":null"):
        return []
    if not isinstance(rules_node, yaml.SequenceNode):
        raise _fail(path, _node_line(rules_node), "'rules' must be a list")
    if len(rules_node.value) > RULES_MAX:
        extra = rules_node.value[RULES_MAX]
        raise _fail(
            path,
            _node_line(extra),
            f"rule {RULES_MAX + 1} of {len(rules_node.value)}: at most {RULES_MAX} rules"
            " are allowed (Mastodon shows at most ten)",
        )
    data = yaml.safe_load(text)["rules"]
    rules: list[dict[str, str]] = []
    for index, (node, item) in enumerate(zip(rules_node.value, data, strict=True), start=1):
        line = _node_line(node)
        if not isinstance(item, dict):
            raise _fail(path, line, f"rule {index} must be a mapping with 'text' and 'hint'")
        unknown = sorted(set(map(str, item)) - RULE_KEYS)
        if unknown:
            raise _fail(
                path, line, f"rule {index}: unknown key(s) {', '.join(unknown)}; only text, hint"
            )
        rule_text = item.get("text")
        hint = item.get("hint", "")
        if hint is None:
            hint = ""
        if not isinstance(rule_text, str):
            raise _fail(path, line, f"rule {index}: 'text' must be a string")
        if not isinstance(hint, str):
            raise _fail(path, line, f"rule {index}: 'hint' must be a string")
        if not rule_text.strip():
            raise _fail(path, line, f"rule {index}: 'text' is empty")
        if len(rule_text) > RULE_TEXT_MAX:
            raise _fail(
                path,
                line,
                f"rule {index}: text is {len(rule_text)} characters; at most {RULE_TEXT_MAX}",
            )
        rules.append({"text": rule_text, "hint": hint})
    return rules


# ---------------------------------------------------------------------------------------------
# community/domain-blocks.csv and the inventory lists


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def parse_blocklist(
    text: str,
    path: str = "community/domain-blocks.csv",
    private_comment: str = "",
) -> list[dict[str, Any]]:
    """Parse a domain-block CSV in Mastodon's admin import format.

    The first line may be the header of Mastodon's export (columns in any order, #domain
    required); without a header the columns are taken in export order. Blank lines are
    skipped. Any other problem raises with the line number and the reason.
    """
    return [block for _, block in _blocklist_rows(text, path, private_comment)]


def _blocklist_rows(text: str, path: str, private_comment: str) -> list[tuple[int, dict[str, Any]]]:
    """parse_blocklist's blocks, each with the line it came from."""
    lines = text.splitlines()
    columns: tuple[str, ...] = BLOCKLIST_COLUMNS
    blocks: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader(io.StringIO(line), strict=True))
        except csv.Error as exc:
            raise _fail(path, number, f"malformed CSV line: {exc}") from None
        fields = [field.strip() for field in fields]
        if number == 1 and fields and fields[0].startswith("#"):
            unknown = [name for name in fields if name not in BLOCKLIST_COLUMNS]
            if unknown:
                raise _fail(
                    path,
                    number,
                    f"unknown header column(s) {', '.join(unknown)}; expected"
                    f" {','.join(BLOCKLIST_COLUMNS)}",
                )
            if "#domain" not in fields or len(set(fields)) != len(fields):
                raise _fail(path, number, "the header needs #domain, each column once")
            columns = tuple(fields)
            continue
        if len(fields) > len(columns):
            raise _fail(
                path,
                number,
                f"malformed line: {len(fields)} fields, the header has {len(columns)}",
            )
        row = dict(zip(columns, fields, strict=False))
        try:
            domain = normalize_domain(row.get("#domain", ""))
        except ValueError as exc:
            raise _fail(path, number, str(exc)) from None
        if domain in seen:
            raise _fail(path, number, f"{domain} is already listed on line {seen[domain]}")
        seen[domain] = number
        block = _block.empty_block(domain)
        block["private_comment"] = private_comment
        severity = row.get("#severity", "") or "suspend"
        if severity not in SEVERITIES:
            raise _fail(
                path, number, f"severity {severity!r} is not one of {', '.join(SEVERITIES)}"
            )
        block["severity"] = severity
        for field in BLOCK_BOOL_FIELDS:
            try:
                block[field] = _parse_bool(row.get(f"#{field}", ""))
            except ValueError as exc:
                raise _fail(path, number, f"{field}: {exc}") from None
        block["public_comment"] = row.get("#public_comment", "")
        blocks.append((number, block))
    return blocks


def parse_shared_blocklist(
    text: str,
    path: str = "cooperative/blocklist.csv",
    cooperative_domains: list[str] | None = None,
    private_comment: str = "",
) -> list[dict[str, Any]]:
    """The cooperative's shared blocklist: Mastodon's import format, as parse_blocklist reads
    it, where every entry gives its reason (#public_comment) and none may hit a member of the
    cooperative (its domain, a domain above it, or one below it)."""
    members = [normalize_domain(d) for d in cooperative_domains or []]
    rows = _blocklist_rows(text, path, private_comment)
    for number, block in rows:
        domain = block["domain"]
        if not block["public_comment"].strip():
            raise _fail(path, number, f"{domain}: expected its reason in #public_comment")
        for member in members:
            if member == domain or member.endswith("." + domain) or domain.endswith("." + member):
                raise _fail(
                    path,
                    number,
                    f"{domain} would block {member}, a member of the cooperative; members are"
                    " never blocked",
                )
    return [block for _, block in rows]


def merge_shared_blocks(shared: list[dict[str, Any]], own: list[dict[str, Any]]) -> dict[str, Any]:
    """The institution's own blocks and the shared ones it does not list itself: for a domain in
    both, the institution's own entry wins. Returns the blocks and what the merge did."""
    own_domains = {block["domain"] for block in own}
    added = [block for block in shared if block["domain"] not in own_domains]
    return {
        "blocks": sorted([*own, *added], key=lambda block: block["domain"]),
        "added": sorted(block["domain"] for block in added),
        "own_wins": sorted(block["domain"] for block in shared if block["domain"] in own_domains),
    }


def cooperative_allows(
    allows: list[dict[str, str]], cooperative_domains: Any
) -> list[dict[str, str]]:
    """Allow-list mode: the institution's allows and every other member of the cooperative."""
    listed = {allow["domain"] for allow in allows}
    extra = []
    for index, value in enumerate(cooperative_domains or []):
        try:
            domain = normalize_domain(value)
        except ValueError as exc:
            raise _fail(f"instance_settings_cooperative_domains[{index}]", None, str(exc)) from None
        if domain not in listed:
            listed.add(domain)
            extra.append({"domain": domain})
    return sorted([*allows, *extra], key=lambda allow: allow["domain"])


def _unseen_domain(value: Any, where: str, seen: set[str]) -> str:
    """The normalised domain of inventory entry `where`, added to `seen`; raises when it is not
    a domain or already in `seen`."""
    try:
        domain = normalize_domain(value)
    except ValueError as exc:
        raise _fail(where, None, str(exc)) from None
    if domain in seen:
        raise _fail(where, None, f"{domain} is listed twice")
    seen.add(domain)
    return domain


def normalize_domain_blocks(
    items: Any, varname: str = "instance_settings_domain_blocks"
) -> list[dict[str, Any]]:
    """Validate the inventory's list of domain blocks; same shape as parse_blocklist's."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _fail(varname, None, "must be a list of mappings")
    blocks = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        where = f"{varname}[{index - 1}]"
        if isinstance(item, str):
            item = {"domain": item}
        if not isinstance(item, dict):
            raise _fail(where, None, "must be a mapping with at least 'domain'")
        unknown = sorted(set(map(str, item)) - BLOCK_KEYS)
        if unknown:
            raise _fail(
                where,
                None,
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(BLOCK_KEYS))}",
            )
        domain = _unseen_domain(item.get("domain"), where, seen)
        block = _block.empty_block(domain)
        severity = item.get("severity", "suspend")
        if severity not in SEVERITIES:
            raise _fail(where, None, f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        block["severity"] = severity
        for field in BLOCK_BOOL_FIELDS:
            value = item.get(field, False)
            if not isinstance(value, bool):
                raise _fail(where, None, f"{field} must be true or false")
            block[field] = value
        for field in BLOCK_TEXT_FIELDS:
            value = item.get(field, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise _fail(where, None, f"{field} must be a string")
            block[field] = value
        blocks.append(block)
    return blocks


def merge_domain_blocks(
    from_file: list[dict[str, Any]],
    from_inventory: list[dict[str, Any]],
    path: str = "community/domain-blocks.csv",
    varname: str = "instance_settings_domain_blocks",
) -> list[dict[str, Any]]:
    """One list; a domain in both the CSV and the inventory is an error (which one wins?)."""
    in_file = {block["domain"] for block in from_file}
    for index, block in enumerate(from_inventory):
        if block["domain"] in in_file:
            raise _fail(
                f"{varname}[{index}]",
                None,
                f"{block['domain']} is also in {path}; list each domain in one place",
            )
    return sorted([*from_file, *from_inventory], key=lambda block: block["domain"])


def normalize_domain_allows(
    items: Any, varname: str = "instance_settings_domain_allows"
) -> list[dict[str, str]]:
    """Validate the inventory's allow-list (limited federation mode)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _fail(varname, None, "must be a list of domains")
    allows = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{varname}[{index}]"
        if isinstance(item, dict):
            unknown = sorted(set(map(str, item)) - ALLOW_KEYS)
            if unknown:
                raise _fail(where, None, f"unknown key(s) {', '.join(unknown)}; only domain")
            item = item.get("domain")
        domain = _unseen_domain(item, where, seen)
        allows.append({"domain": domain})
    return sorted(allows, key=lambda allow: allow["domain"])


# ---------------------------------------------------------------------------------------------
# Inventory variables


def validate_site_settings(
    settings: Any, varname: str = "instance_settings_site_settings"
) -> dict[str, Any]:
    """Reject unknown keys and values of the wrong type in the free-form settings mapping."""
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise _fail(varname, None, "must be a mapping of setting name to value")
    for key, value in settings.items():
        if key not in EXTRA_SETTINGS:
            raise _fail(
                varname,
                None,
                f"unknown setting key {key!r}; known: {', '.join(sorted(EXTRA_SETTINGS))}",
            )
        types = EXTRA_SETTINGS[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise _fail(
                varname,
                None,
                f"{key}: expected {' or '.join(t.__name__ for t in types)},"
                f" got {type(value).__name__}",
            )
        if key.startswith("show_domain_blocks") and value not in SHOW_DOMAIN_BLOCKS_CHOICES:
            raise _fail(varname, None, f"{key}: one of {', '.join(SHOW_DOMAIN_BLOCKS_CHOICES)}")
    return dict(settings)


def validate_staff(
    staff: Any, owner: str, varname: str = "instance_settings_staff"
) -> list[dict[str, str]]:
    """At least two staff accounts besides the owner, each with a valid username/email/role."""
    if not isinstance(staff, list):
        raise _fail(varname, None, "must be a list of {username, email, role}")
    if len(staff) < STAFF_MIN:
        raise _fail(
            varname,
            None,
            f"{len(staff)} entr{'y' if len(staff) == 1 else 'ies'}; at least {STAFF_MIN}"
            " moderators or admins besides the owner are required",
        )
    result = []
    seen: set[str] = set()
    for index, item in enumerate(staff):
        where = f"{varname}[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, None, "must be a mapping with username, email and role")
        unknown = sorted(set(map(str, item)) - {"username", "email", "role"})
        if unknown:
            raise _fail(where, None, f"unknown key(s) {', '.join(unknown)}")
        username = item.get("username")
        if not isinstance(username, str) or not _USERNAME.match(username):
            raise _fail(where, None, f"username {username!r}: letters, digits, _ (1-30)")
        if username.lower() == str(owner).lower():
            raise _fail(where, None, f"{username} is the owner; the owner is not listed here")
        if username.lower() in seen:
            raise _fail(where, None, f"{username} is listed twice")
        seen.add(username.lower())
        email = item.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise _fail(where, None, f"email {email!r} is not an e-mail address")
        role = item.get("role")
        if role not in STAFF_ROLES:
            raise _fail(where, None, f"role {role!r} is not one of {', '.join(STAFF_ROLES)}")
        result.append({"username": username, "email": email, "role": role})
    return result


class FilterModule:
    """Filters used by validate.yml."""

    def filters(self) -> dict[str, Any]:
        return {
            "instance_settings_rules": parse_rules,
            "instance_settings_blocklist": parse_blocklist,
            "instance_settings_domain_blocks": normalize_domain_blocks,
            "instance_settings_merge_blocks": merge_domain_blocks,
            "instance_settings_shared_blocklist": parse_shared_blocklist,
            "instance_settings_merge_shared_blocks": merge_shared_blocks,
            "instance_settings_cooperative_allows": cooperative_allows,
            "instance_settings_domain_allows": normalize_domain_allows,
            "instance_settings_site_settings": validate_site_settings,
            "instance_settings_staff": validate_staff,
        }
