#!/usr/bin/python
"""Match Mastodon's domain blocks (and allows) to a list, through the admin REST API."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

if TYPE_CHECKING:  # mypy reads the role's module_utils file by its path in the repository
    from roles.instance_settings.module_utils.instance_settings_domain_block import (
        BLOCK_FIELDS,
        block_view,
    )
else:  # the role's module_utils/, shipped to the host by AnsiballZ (the filters share it)
    from ansible.module_utils.instance_settings_domain_block import BLOCK_FIELDS, block_view

DOCUMENTATION = r"""
---
module: instance_settings_domain_policy
short_description: Make Mastodon's domain blocks and allows equal a given list
description:
  - Reads every page of C(/api/v1/admin/domain_blocks) (and C(/api/v1/admin/domain_allows) when
    O(allows) is given), compares them by domain with the wanted lists and creates, updates
    (C(PUT)) and deletes until the server matches exactly.
  - In check mode only the C(GET) requests are made; the returned C(changes) and diff show what
    an apply would do.
options:
  api_url:
    description: Base URL of the Mastodon web process, usually C(http://127.0.0.1:3000).
    type: str
    required: true
  token:
    description: Bearer token with the admin:read and admin:write scopes.
    type: str
    required: true
    no_log: true
  host:
    description: Host header to send (the web domain); empty sends the URL's host.
    type: str
    default: ""
  blocks:
    description: Wanted domain blocks, normalised by the role's validators.
    type: list
    elements: dict
    required: true
  allows:
    description: Wanted domain allows (allow-list mode); omitted = allows are not managed.
    type: list
    elements: dict
  timeout:
    description: Seconds per HTTP request.
    type: int
    default: 30
  max_pages:
    description: Upper bound on pages read per list (200 entries each).
    type: int
    default: 500
author: instance-cli project
"""

RETURN = r"""
changes:
  description: The create/update/delete operations made (or, in check mode, that would be).
  returned: success
  type: list
  elements: dict
"""

_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class ApiError(Exception):
    """An HTTP answer the module cannot work with."""


class Api:
    """A tiny client for Mastodon's admin API."""

    def __init__(self, base: str, token: str, host: str, timeout: int) -> None:
        self.base = base.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            # Mastodon in production redirects plain HTTP to HTTPS unless the request says it
            # came through the TLS proxy, as nginx does.
            "X-Forwarded-Proto": "https",
        }
        if host:
            self.headers["Host"] = host
        self.timeout = timeout

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        if not url.startswith("http"):
            url = self.base + url
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                text = resp.read().decode("utf-8")
                link = resp.headers.get("Link", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise ApiError(f"{method} {url.split('?')[0]}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ApiError(f"{method} {url.split('?')[0]}: {exc}") from None
        self.last_link = link
        return json.loads(text) if text.strip() else None

    def list_all(self, path: str, max_pages: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url = f"{path}?limit=200"
        for _ in range(max_pages):
            page = self.request("GET", url)
            if not isinstance(page, list):
                raise ApiError(f"GET {path}: expected a JSON list")
            items.extend(page)
            match = _NEXT.search(self.last_link or "")
            if not match or not page:
                return items
            url = match.group(1)
        raise ApiError(f"GET {path}: more than {max_pages} pages")


def plan_blocks(
    current: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Operations that turn the server's list into the wanted one, sorted by domain."""
    have = {item["domain"]: item for item in current}
    want = {item["domain"]: block_view(item) for item in wanted}
    ops: list[dict[str, Any]] = []
    for domain in sorted(set(have) | set(want)):
        if domain not in want:
            ops.append({"action": "delete", "domain": domain, "id": str(have[domain]["id"])})
        elif domain not in have:
            ops.append({"action": "create", "domain": domain, "after": want[domain]})
        else:
            old = block_view(have[domain])
            fields = [f for f in BLOCK_FIELDS if old[f] != want[domain][f]]
            if fields:
                ops.append(
                    {
                        "action": "update",
                        "domain": domain,
                        "id": str(have[domain]["id"]),
                        "before": {f: old[f] for f in fields},
                        "after": {f: want[domain][f] for f in fields},
                    }
                )
    return ops


def plan_allows(
    current: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    have = {item["domain"]: str(item["id"]) for item in current}
    want = {item["domain"] for item in wanted}
    ops: list[dict[str, Any]] = []
    for domain in sorted(set(have) | want):
        if domain not in want:
            ops.append({"action": "delete_allow", "domain": domain, "id": have[domain]})
        elif domain not in have:
            ops.append({"action": "create_allow", "domain": domain})
    return ops


def render(items: list[dict[str, Any]]) -> str:
    """One line per domain, for the --diff view."""
    lines = [json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items]
    return "".join(line + "\n" for line in sorted(lines))


def apply(api: Api, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        action = op["action"]
        if action == "create":
            api.request("POST", "/api/v1/admin/domain_blocks", op["after"])
        elif action == "update":
            api.request("PUT", f"/api/v1/admin/domain_blocks/{op['id']}", op["after"])
        elif action == "delete":
            api.request("DELETE", f"/api/v1/admin/domain_blocks/{op['id']}")
        elif action == "create_allow":
            api.request("POST", "/api/v1/admin/domain_allows", {"domain": op["domain"]})
        elif action == "delete_allow":
            api.request("DELETE", f"/api/v1/admin/domain_allows/{op['id']}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "api_url": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "host": {"type": "str", "default": ""},
            "blocks": {"type": "list", "elements": "dict", "required": True},
            "allows": {"type": "list", "elements": "dict"},
            "timeout": {"type": "int", "default": 30},
            "max_pages": {"type": "int", "default": 500},
        },
        supports_check_mode=True,
    )
    p = module.params
    api = Api(p["api_url"], p["token"], p["host"], p["timeout"])
    try:
        current_blocks = [
            block_view(b) | {"id": b["id"]}
            for b in api.list_all("/api/v1/admin/domain_blocks", p["max_pages"])
        ]
        ops = plan_blocks(current_blocks, p["blocks"])
        before = [{k: v for k, v in b.items() if k != "id"} for b in current_blocks]
        after = [block_view(b) for b in p["blocks"]]
        if p["allows"] is not None:
            current_allows = api.list_all("/api/v1/admin/domain_allows", p["max_pages"])
            ops += plan_allows(current_allows, p["allows"])
            before += [{"allow": a["domain"]} for a in current_allows]
            after += [{"allow": a["domain"]} for a in p["allows"]]
        if ops and not module.check_mode:
            apply(api, ops)
    except ApiError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(ops),
        changes=ops,
        diff={
            "before": render(before),
            "after": render(after),
            "before_header": "domain policy (server)",
            "after_header": "domain policy (inventory)",
        },
    )


if __name__ == "__main__":
    main()
