"""What a domain block is, for both sides of the role instance_settings.

The filters (filter_plugins/instance_settings.py, on the controller) turn the CSV file and the
inventory into blocks of this shape; the module instance_settings_domain_policy (on the host)
compares the server's blocks with them field by field. One definition keeps the two in step.

How each side imports this file:
- the module: `from ansible.module_utils.instance_settings_domain_block import ...`. Ansible
  adds a role's module_utils/ to its module_utils search path when it loads the role, and
  AnsiballZ ships the file to the host inside the module's zip.
- a controller plugin (filter, action): Ansible does not put a standalone role's module_utils/
  on the controller's Python path (`ansible.module_utils.<name>` fails there with "No module
  named ..."; only collections give plugins an import path,
  `ansible_collections.<ns>.<name>.plugins.module_utils`). The plugin loads this file by its
  path next to its own directory (see filter_plugins/instance_settings.py).

Standard library only: it runs on the host's Python as well.
"""

from __future__ import annotations

from typing import Any

# The fields Mastodon's admin API takes for a block, in the API's order, with the value a
# block gets when the CSV file or the inventory leaves the field out.
BLOCK_DEFAULTS: dict[str, Any] = {
    "severity": "suspend",
    "reject_media": False,
    "reject_reports": False,
    "private_comment": "",
    "public_comment": "",
    "obfuscate": False,
}
BLOCK_FIELDS = tuple(BLOCK_DEFAULTS)
BLOCK_BOOL_FIELDS = tuple(f for f, v in BLOCK_DEFAULTS.items() if isinstance(v, bool))
BLOCK_TEXT_FIELDS = tuple(f for f in BLOCK_FIELDS if f.endswith("_comment"))


def empty_block(domain: str) -> dict[str, Any]:
    """A block of `domain` with every field at its default."""
    return {"domain": domain, **BLOCK_DEFAULTS}


def block_view(block: dict[str, Any]) -> dict[str, Any]:
    """The compared fields of a block, with null comments read as empty text."""
    view = {"domain": block["domain"]}
    for field in BLOCK_FIELDS:
        value = block.get(field)
        if field in BLOCK_TEXT_FIELDS:
            value = value or ""
        elif field in BLOCK_BOOL_FIELDS:
            value = bool(value)
        view[field] = value
    return view
