"""Who may appear under their own name, and the pseudonym of everyone else.

Opt-in is a profile field: an account of this instance whose profile has a field named
`Course analytics` (any case) with the value `opt-in` appears under its handle. Everyone else,
including every account of another server, is `p-` and the first 12 hex digits of an
HMAC-SHA256 of the account's profile URL under the instance's analytics secret: stable across
runs, not reversible without the secret, and different from one instance to the next. Status
ids are keyed the same way (`s-…`), since a status id leads back to its author through the API.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from instance_cli.errors import InstanceCliError

OPT_IN_FIELD = "course analytics"
OPT_IN_VALUE = "opt-in"
_TAG = re.compile(r"<[^>]*>")


def field_text(value: str) -> str:
    """A profile field's value as text (Mastodon sends it as HTML)."""
    return " ".join(_TAG.sub(" ", value).split()).strip().lower()


def opted_in(account: dict[str, Any]) -> bool:
    """True for an account of this instance (no `@domain` in `acct`) that opted in."""
    if "@" in str(account.get("acct", "")):
        return False
    return any(
        str(f.get("name", "")).strip().lower() == OPT_IN_FIELD
        and field_text(str(f.get("value", ""))) == OPT_IN_VALUE
        for f in account.get("fields") or []
    )


@dataclass(frozen=True)
class Pseudonymizer:
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise InstanceCliError(
                "analytics secret: expected at least 16 bytes (the vault's"
                f" vault_analytics_secret), got {len(self.secret)}"
            )

    def _digest(self, kind: str, key: str, length: int) -> str:
        return hmac.new(self.secret, f"{kind}:{key}".encode(), hashlib.sha256).hexdigest()[:length]

    def pseudonym(self, account: dict[str, Any]) -> str:
        """The account's pseudonym, keyed on its profile URL (mentions carry it too)."""
        url = str(account.get("url") or "")
        if not url:
            raise InstanceCliError(f"account {account.get('acct')!r}: no url to key a pseudonym on")
        return "p-" + self._digest("account", url, 12)

    def status(self, status_id: str | int) -> str:
        """A status id, keyed: outputs and caches never hold the id itself."""
        return "s-" + self._digest("status", str(status_id), 16)
