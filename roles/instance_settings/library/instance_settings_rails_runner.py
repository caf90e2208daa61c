#!/usr/bin/python
"""Run one of the role's reviewed Ruby scripts with `bin/rails runner`, data as JSON on stdin."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: instance_settings_rails_runner
short_description: Run a reviewed Ruby script with bin/rails runner and report its JSON diff
description:
  - Writes O(script) to a private temporary file, runs
    C(<command_prefix> bin/rails runner <file>) in O(chdir) and passes O(data) plus a
    C(dry_run) flag as one JSON document on standard input. User text is therefore never
    evaluated as Ruby.
  - The script prints one line C(INSTANCE_SETTINGS_RESULT <json>) with a C(changes) list and
    optional C(before)/C(after) values. The module reports C(changed) exactly when C(changes) is
    not empty and returns C(before)/C(after) as the task's diff.
  - In check mode the script runs with C(dry_run=true) and writes nothing.
options:
  script:
    description: Ruby source of the script (the role reads it from its files/ directory).
    type: str
    required: true
  script_name:
    description: Name used for the temporary file and in messages.
    type: str
    default: script.rb
  data:
    description: JSON-serialisable input for the script.
    type: dict
    required: true
  chdir:
    description: The Mastodon checkout.
    type: path
    required: true
  command_prefix:
    description: Words placed before C(bin/rails), for example C([bundle, exec]).
    type: list
    elements: str
    default: []
  environment:
    description: Extra environment variables (C(RAILS_ENV), C(PATH)).
    type: dict
    default: {}
  timeout:
    description: Seconds before the runner is stopped.
    type: int
    default: 600
author: instance-cli project
"""

RETURN = r"""
changes:
  description: What the script changed (or would change in check mode).
  returned: success
  type: list
  elements: dict
result:
  description: The script's whole JSON result.
  returned: success
  type: dict
"""

MARKER = "INSTANCE_SETTINGS_RESULT "


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The last marker line of the runner's output, decoded; None when there is none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            value = json.loads(line[len(MARKER) :])
            return value if isinstance(value, dict) else None
    return None


def render(value: Any) -> str:
    """Stable, readable text for Ansible's diff view."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "script": {"type": "str", "required": True},
            "script_name": {"type": "str", "default": "script.rb"},
            "data": {"type": "dict", "required": True},
            "chdir": {"type": "path", "required": True},
            "command_prefix": {"type": "list", "elements": "str", "default": []},
            "environment": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    params = module.params
    payload = dict(params["data"])
    payload["dry_run"] = bool(module.check_mode)
    name = os.path.basename(params["script_name"])
    with tempfile.TemporaryDirectory(prefix="instance-settings-") as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(params["script"])
        argv = [*params["command_prefix"], "bin/rails", "runner", path]
        if params["timeout"] > 0:
            argv = ["timeout", str(params["timeout"]), *argv]
        env = {str(k): str(v) for k, v in params["environment"].items()}
        rc, stdout, stderr = module.run_command(
            argv,
            cwd=params["chdir"],
            data=json.dumps(payload, ensure_ascii=False),
            binary_data=False,
            environ_update=env,
            encoding="utf-8",
        )
    try:
        result = parse_result(stdout)
    except ValueError as exc:
        module.fail_json(msg=f"{name}: unreadable result line: {exc}", rc=rc, stderr=stderr)
    if result is None or rc != 0 or "error" in result:
        reason = (result or {}).get("error") or stderr.strip()[-2000:] or stdout.strip()[-2000:]
        module.fail_json(msg=f"{name} failed (exit {rc}): {reason}", rc=rc)
    changes = result.get("changes", [])
    out: dict[str, Any] = {"changed": bool(changes), "changes": changes, "result": result}
    if "before" in result or "after" in result:
        out["diff"] = {
            "before": render(result.get("before")),
            "after": render(result.get("after")),
            "before_header": f"{name} (server)",
            "after_header": f"{name} (inventory)",
        }
    module.exit_json(**out)


if __name__ == "__main__":
    main()
