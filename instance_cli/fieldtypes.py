"""The value types of the questionnaire's schema: each checks a YAML value, parses the
interactive text, and says what it expects (the words of every error message)."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Answers = dict[str, Any]


class BadValue(ValueError):
    """Raised by a type check; the message is what was expected."""


def show(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        text = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        suffix = f" ({len(value)} characters)" if len(value) > 60 else ""
        return f'"{text}"{suffix}'
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)[:40]
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a mapping with {len(value)} key{'s' if len(value) != 1 else ''}"
    return f"a value of type {type(value).__name__}"


def keyname(name: str) -> str:
    """A key as it appears in messages: printable, at most 60 characters."""
    text = name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


# --- value types -------------------------------------------------------------------------


class Type:
    """A value type: validates a YAML value, parses interactive text, describes itself."""

    expected = "a value"
    empty = "(empty)"  # how the summary shows an empty answer

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def from_text(self, text: str) -> Any:
        return self.check(text.strip())

    def to_text(self, value: Any) -> str:
        return "" if value is None else str(value)

    def describe(self) -> str:
        return self.expected


class Text(Type):
    def __init__(
        self,
        expected: str = "text",
        *,
        min_len: int = 1,
        max_len: int = 200,
        pattern: str | None = None,
        predicate: Callable[[str], bool] | None = None,
    ) -> None:
        self.expected = expected
        self.min_len = min_len
        self.max_len = max_len
        limit = f"at most {max_len} characters"
        self.too_long = expected if limit in expected else f"{expected} of {limit}"
        self.regex = re.compile(pattern) if pattern else None
        self.predicate = predicate

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise BadValue(self.expected)
        if value and (value != value.strip() or "\n" in value or "\r" in value):
            raise BadValue(f"{self.expected} (one line, no surrounding spaces)")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise BadValue(f"{self.expected} without control characters")
        if len(value) < self.min_len:
            raise BadValue(self.expected if self.min_len > 1 else f"{self.expected} (not empty)")
        if len(value) > self.max_len:
            raise BadValue(self.too_long)
        if value and self.regex and not self.regex.fullmatch(value):
            raise BadValue(self.expected)
        if value and self.predicate and not self.predicate(value):
            raise BadValue(self.expected)
        return value


class Int(Type):
    def __init__(self, lo: int, hi: int, what: str = "a whole number") -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"{what} from {lo} to {hi}"

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(self.expected)
        if not self.lo <= value <= self.hi:
            raise BadValue(self.expected)
        return value

    def from_text(self, text: str) -> Any:
        text = text.strip()
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise BadValue(self.expected)
        return self.check(int(text))


class OptionalInt(Int):
    """An integer or empty (null): empty means "use the value derived from the sizing tier"."""

    empty = "(empty: the sizing tier's value)"

    def __init__(self, lo: int, hi: int, what: str) -> None:
        super().__init__(lo, hi, what)
        self.expected = f"{what} from {lo} to {hi}, or empty for the tier's default"

    def check(self, value: Any) -> Any:
        if value is None:
            return None
        return super().check(value)

    def from_text(self, text: str) -> Any:
        return None if not text.strip() else super().from_text(text)


class Choice(Type):
    def __init__(self, *options: str) -> None:
        self.options = options
        self.expected = "one of " + ", ".join(options)

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or value not in self.options:
            raise BadValue(self.expected)
        return value


class ListOf(Type):
    """A list of scalars; interactively a comma-separated line."""

    def __init__(self, item: Type, *, min_items: int = 0, max_items: int = 50) -> None:
        self.item = item
        self.min_items, self.max_items = min_items, max_items
        bounds = f"at least {min_items}, " if min_items else ""
        self.expected = f"a list ({bounds}at most {max_items}) of {item.expected}"

    def check(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise BadValue(self.expected)
        if not self.min_items <= len(value) <= self.max_items:
            raise BadValue(self.expected)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.item.check(v))
            except BadValue as exc:
                raise BadValue(f"item {i + 1} to be {exc}") from None
        if len(set(map(str, out))) != len(out):
            raise BadValue(f"{self.expected}, without duplicates")
        return out

    def from_text(self, text: str) -> Any:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return self.check(parts)

    def to_text(self, value: Any) -> str:
        return ", ".join(str(v) for v in value or [])


@dataclass(frozen=True)
class Sub:
    """A field of a record inside a list (e.g. a moderator's email)."""

    name: str
    type: Type
    question: str
    help: str
    required: bool = True
    default: Any = ""
    # interactive default from the answers so far and the record's earlier fields
    suggest: Callable[[Answers, dict[str, Any]], Any] | None = None
    in_summary: bool = True  # shown in the summary before writing


class Records(Type):
    """A list of small mappings (moderators, rules, admin users)."""

    def __init__(
        self, subs: Sequence[Sub], *, min_items: int, max_items: int, what: str, item: str
    ) -> None:
        self.subs = tuple(subs)
        self.min_items, self.max_items = min_items, max_items
        self.item = item  # one entry in plain words: "moderator"
        keys = ", ".join(s.name for s in subs)
        self.expected = f"a list of {min_items} to {max_items} {what} (each with {keys})"

    def check(self, value: Any) -> Any:
        # Item-level problems are collected by validate_records(); this only checks the shape.
        if not isinstance(value, list) or not self.min_items <= len(value) <= self.max_items:
            raise BadValue(self.expected)
        return value


# --- predicates ---------------------------------------------------------------------------

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_domain(value: str) -> bool:
    """A lower-case DNS name with at least two labels and an alphabetic top-level label."""
    if len(value) > 253 or value != value.lower():
        return False
    labels = value.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return bool(re.fullmatch(r"[a-z][a-z0-9-]*", labels[-1]))


def is_email(value: str) -> bool:
    if value.count("@") != 1 or len(value) > 254:
        return False
    local, domain = value.split("@")
    return bool(re.fullmatch(r"[A-Za-z0-9._%+-]{1,64}", local)) and is_domain(domain)


def is_host_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return is_domain(value) or bool(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value))
    return True


def is_from_address(value: str) -> bool:
    match = re.fullmatch(r"([^<>\"]{1,100}) <([^<>]+)>", value)
    if match:
        return is_email(match.group(2))
    return is_email(value)


_RESTIC_PREFIXES = ("sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:")


def is_restic_repository(value: str) -> bool:
    if value.startswith("/"):
        return bool(re.fullmatch(r"/[A-Za-z0-9._/-]+", value))
    return value.startswith(_RESTIC_PREFIXES) and len(value) > 8 and " " not in value


_SSH_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}( [^\n]{0,200})?"
)

_ISO_639_1_CODES = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho
    hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv
    kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr
    nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq
    sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
    yi yo za zh zu"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())

DOMAIN = Text("a DNS domain like social.example.edu", max_len=253, predicate=is_domain)
OPT_DOMAIN = Text(
    "a DNS domain like social.example.edu, or empty", min_len=0, max_len=253, predicate=is_domain
)
EMAIL = Text("an email address like it@example.edu", max_len=254, predicate=is_email)
USERNAME = Text(
    "a Mastodon username (letters, digits, underscore; at most 30)",
    max_len=30,
    pattern=r"[A-Za-z0-9_]{1,30}",
)
SLUG = Text(
    "a short name of lower-case letters, digits and dashes, starting with a letter (2-30)",
    min_len=2,
    max_len=30,
    pattern=r"[a-z][a-z0-9-]{0,28}[a-z0-9]",
)
LANGUAGE = Text("an ISO 639-1 language code like en", max_len=2, predicate=ISO_639_1.__contains__)
SSH_KEY = Text(
    "an OpenSSH public key line like 'ssh-ed25519 AAAA... comment'",
    max_len=16000,
    pattern=_SSH_KEY.pattern,
)


class TimeZone(Text):
    """A name of the tz database (the system's, via zoneinfo): a typo like Europe/Pariss would
    otherwise pass here and fail only when the host is configured."""

    def __init__(self) -> None:
        super().__init__(
            "a time zone of the tz database like Etc/UTC or Europe/Berlin",
            max_len=60,
            pattern=r"[A-Za-z]+(/[A-Za-z0-9_+-]+){0,2}",
        )

    def check(self, value: Any) -> Any:
        value = super().check(value)
        zones = time_zones()
        if zones and value not in zones:
            close = difflib.get_close_matches(value, sorted(zones), n=1)
            raise BadValue(f"{self.expected}" + (f" (did you mean {close[0]}?)" if close else ""))
        return value


@functools.cache
def time_zones() -> frozenset[str]:
    """The tz database's zone names; empty when the system has none (then only the pattern
    is checked)."""
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _country_zones() -> dict[str, str]:
    """Country name or ISO code (lower case) -> its first zone in the tz database's zone.tab."""
    for base in zoneinfo.TZPATH:
        try:
            countries = (Path(base) / "iso3166.tab").read_text(encoding="utf-8")
            zones = (Path(base) / "zone.tab").read_text(encoding="utf-8")
        except OSError:
            continue
        first: dict[str, str] = {}
        for line in zones.splitlines():
            cols = line.split("\t")
            if len(cols) >= 3 and not line.startswith("#"):
                first.setdefault(cols[0], cols[2])
        out: dict[str, str] = {}
        for line in countries.splitlines():
            cols = line.split("\t")
            if len(cols) == 2 and cols[0] in first:
                out[cols[1].lower()] = out[cols[0].lower()] = first[cols[0]]
        return out
    return {}


def zone_for_country(country: str) -> str:
    """'Germany' -> 'Europe/Berlin' (the first zone listed for it), else Etc/UTC."""
    return _country_zones().get(country.strip().lower(), "Etc/UTC")


# Accounts an admin login must not take over: Debian base-passwd's static users and groups
# (useradd would clash with the group of the same name), the users the packages our roles
# install create (openssh-server, dbus, chrony, systemd, PostgreSQL, Redis, nginx's www-data),
# and the roles' own service user. Names starting with systemd- or _ are system accounts too.
_SYSTEM_ACCOUNT_NAMES = """
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc _apt
    nobody adm tty disk kmem dialout fax voice cdrom floppy tape sudo audio dip operator src
    shadow utmp video sasl plugdev staff users nogroup
    sshd messagebus polkitd postgres redis mastodon ssl-cert"""
SYSTEM_ACCOUNTS = frozenset(_SYSTEM_ACCOUNT_NAMES.split())
_SYSTEM_EXAMPLES = "root, daemon, www-data, postgres, redis, mastodon, ..."


def is_system_account(name: str) -> bool:
    return name in SYSTEM_ACCOUNTS or name.startswith(("systemd-", "_"))


class AdminLogin(Text):
    """A personal Unix login for a system administrator: never a system or service account."""

    def __init__(self) -> None:
        super().__init__(
            "a Unix user name (lower-case letters, digits, _ and -, at most 32)",
            max_len=32,
            pattern=r"[a-z_][a-z0-9_-]{0,31}",
        )

    def check(self, value: Any) -> Any:
        value = super().check(value)
        if is_system_account(value):
            raise BadValue(
                f"a personal login, not the system or service account {value} "
                f"({_SYSTEM_EXAMPLES} are reserved)"
            )
        return value

    def describe(self) -> str:
        return f"{self.expected}, not a system account ({_SYSTEM_EXAMPLES})"


def slugify(text: str) -> str:
    """Derive a slug from a short name: 'Example U.' -> 'example-u'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)[:30].strip("-")
    return slug if len(slug) >= 2 else "institution"
