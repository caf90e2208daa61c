#!/usr/bin/python
"""Run the role's reviewed Ruby scripts with `bin/rails runner`, data as JSON on stdin.

One script per call, or several (O(scripts)) in ONE `bin/rails runner` process, so a converged
server pays for one Rails boot instead of one per script.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
---
module: instance_settings_rails_runner
short_description: Run reviewed Ruby scripts with bin/rails runner and report their JSON diff
description:
  - Writes O(script) to a private temporary file, runs
    C(<command_prefix> bin/rails runner <file>) in O(chdir) and passes O(data) plus a
    C(dry_run) flag as one JSON document on standard input. User text is therefore never
    evaluated as Ruby.
  - The script prints one line C(INSTANCE_SETTINGS_RESULT <json>) with a C(changes) list and
    optional C(before)/C(after) values. The module reports C(changed) exactly when C(changes) is
    not empty (and the script did not set C(deferred)) and returns C(before)/C(after) as the
    task's diff.
  - With O(scripts) instead, every listed script runs in one Rails process: a small Ruby driver
    (O(driver), the role's C(files/batch_driver.rb)) loads each script in turn, gives it its
    own JSON input on standard input, collects the result line it prints and stops at the
    first script that fails. The module then returns one result per script in C(by_script),
    each exactly what a single-script call would return (or C(failed)/C(msg)); it fails itself
    only when Rails could not run the driver at all.
  - With O(from_batch) holding this script's entry of such C(by_script) (same O(script_name),
    same check mode), that entry is returned instead of running anything. The role's action
    plugin of the same name decides this on the controller, without a connection, and removes
    O(from_batch) from the arguments the module gets.
  - In check mode the scripts run with C(dry_run=true) and write nothing.
options:
  script:
    description: Ruby source of the script (the role reads it from its files/ directory).
    type: str
  script_name:
    description: Name used for the temporary file and in messages.
    type: str
    default: script.rb
  data:
    description: JSON-serialisable input for O(script).
    type: dict
  scripts:
    description:
      - Several scripts to run in one Rails process, in this order. Each item has C(name),
        C(script) (Ruby source) and C(data) (its JSON input), like the single-script options.
      - Mutually exclusive with O(script).
    type: list
    elements: dict
  driver:
    description:
      - Ruby source of the batch driver, needed with O(scripts). The role's action plugin sets
        it from C(files/batch_driver.rb); tasks do not pass it.
    type: str
  from_batch:
    description:
      - This script's entry of the C(by_script) of an earlier O(scripts) call. When it matches
        O(script_name) and the check mode, it is returned and nothing runs.
      - Handled by the action plugin on the controller; the module never receives it.
    type: dict
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
    description: Seconds before the runner is stopped (for all of O(scripts) together).
    type: int
    default: 600
author: instance-cli project
"""

RETURN = r"""
changes:
  description: What the script changed (or would change in check mode).
  returned: success, single script
  type: list
  elements: dict
result:
  description: The script's whole JSON result.
  returned: success, single script
  type: dict
by_script:
  description:
    - With O(scripts), script name -> that script's result (C(changed), C(changes), C(result),
      C(diff), C(script_name), C(dry_run)) or C(failed)/C(msg). Scripts after a failed one did
      not run and are absent.
  returned: success, several scripts
  type: dict
"""

MARKER = "INSTANCE_SETTINGS_RESULT "
BATCH_MARKER = "INSTANCE_SETTINGS_BATCH "


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The last marker line of the runner's output, decoded; None when there is none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            value = json.loads(line[len(MARKER) :])
            return value if isinstance(value, dict) else None
    return None


def parse_batch(stdout: str) -> list[dict[str, Any]] | None:
    """The driver's list of runs, or None when it printed no batch line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(BATCH_MARKER):
            value = json.loads(line[len(BATCH_MARKER) :])
            runs = value.get("runs") if isinstance(value, dict) else None
            return runs if isinstance(runs, list) else None
    return None


def render(value: Any) -> str:
    """Stable, readable text for Ansible's diff view."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def failure(name: str, dry_run: bool, rc: int, msg: str) -> dict[str, Any]:
    """What a task running script `name` returns when the script failed."""
    return {"script_name": name, "dry_run": dry_run, "failed": True, "rc": rc, "msg": msg}


def script_outcome(
    name: str, rc: int, result: dict[str, Any] | None, fallback: str, dry_run: bool
) -> dict[str, Any]:
    """What a task running script `name` returns: changes, result and diff, or failed and msg."""
    if result is None or rc != 0 or "error" in result:
        reason = (result or {}).get("error") or fallback.strip()[-2000:]
        return failure(name, dry_run, rc, f"{name} failed (exit {rc}): {reason}")
    changes = result.get("changes", [])
    out: dict[str, Any] = {
        "script_name": name,
        "dry_run": dry_run,
        "changed": bool(changes) and not result.get("deferred", False),
        "changes": changes,
        "result": result,
    }
    if "before" in result or "after" in result:
        out["diff"] = {
            "before": render(result.get("before")),
            "after": render(result.get("after")),
            "before_header": f"{name} (server)",
            "after_header": f"{name} (inventory)",
        }
    return out


def batch_outcomes(
    names: list[str], rc: int, stdout: str, stderr: str, dry_run: bool
) -> dict[str, dict[str, Any]]:
    """Per-script outcomes of a driver run. Secrets in one script's result (the API token)
    are removed from every failure message."""
    try:
        runs = parse_batch(stdout)
    except ValueError as exc:
        runs = None
        stderr = f"unreadable batch line: {exc}"
    if runs is None:
        reason = stderr.strip()[-2000:] or "the batch driver printed no result"
        return {
            name: failure(
                name, dry_run, rc, f"{name} failed (bin/rails runner exit {rc}): {reason}"
            )
            for name in names
        }
    outcomes: dict[str, dict[str, Any]] = {}
    for run in runs:
        name = str(run.get("name"))
        output = str(run.get("output") or "")
        try:
            result = parse_result(output)
        except ValueError as exc:
            result, output = None, f"unreadable result line: {exc}"
        fallback = str(run.get("error") or "") or output
        status = int(run.get("status") or 0)
        outcomes[name] = script_outcome(name, status, result, fallback, dry_run)
    secrets = [
        str(o["result"]["token"])
        for o in outcomes.values()
        if isinstance(o.get("result"), dict) and o["result"].get("token")
    ]
    for outcome in outcomes.values():
        for secret in secrets:
            if "msg" in outcome:
                outcome["msg"] = outcome["msg"].replace(secret, "********")
    return outcomes


def run_rails(module: AnsibleModule, path: str, stdin: str) -> tuple[int, str, str]:
    params = module.params
    argv = [*params["command_prefix"], "bin/rails", "runner", path]
    if params["timeout"] > 0:
        argv = ["timeout", str(params["timeout"]), *argv]
    env = {str(k): str(v) for k, v in params["environment"].items()}
    rc, stdout, stderr = module.run_command(
        argv,
        cwd=params["chdir"],
        data=stdin,
        binary_data=False,
        environ_update=env,
        encoding="utf-8",
    )
    return rc, stdout, stderr


def write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def finish(module: AnsibleModule, outcome: dict[str, Any]) -> None:
    if outcome.get("failed"):
        module.fail_json(msg=outcome["msg"], rc=outcome.get("rc"))
    module.exit_json(**outcome)


def run_one(module: AnsibleModule, dry_run: bool) -> None:
    params = module.params
    name = os.path.basename(params["script_name"])
    payload = dict(params["data"])
    payload["dry_run"] = dry_run
    with tempfile.TemporaryDirectory(prefix="instance-settings-") as tmp:
        path = write(tmp, name, params["script"])
        rc, stdout, stderr = run_rails(module, path, json.dumps(payload, ensure_ascii=False))
    try:
        result = parse_result(stdout)
    except ValueError as exc:
        module.fail_json(msg=f"{name}: unreadable result line: {exc}", rc=rc, stderr=stderr)
    finish(module, script_outcome(name, rc, result, stderr.strip() or stdout, dry_run))


def run_many(module: AnsibleModule, dry_run: bool) -> None:
    entries: list[tuple[str, str, dict[str, Any]]] = []
    for index, item in enumerate(module.params["scripts"]):
        name = os.path.basename(str(item.get("name") or ""))
        source, data = item.get("script"), item.get("data")
        if not name or not isinstance(source, str) or not isinstance(data, dict):
            module.fail_json(msg=f"scripts[{index}]: needs name, script (text), data (a mapping)")
        if any(name == other[0] for other in entries):
            module.fail_json(msg=f"scripts[{index}]: the name {name!r} is used twice")
        entries.append((name, source, {**data, "dry_run": dry_run}))
    if not entries:
        module.exit_json(changed=False, failed_scripts=[], by_script={})
    driver_source = module.params["driver"]
    if not driver_source:
        module.fail_json(msg="scripts needs driver (the role's action plugin sets it)")
    with tempfile.TemporaryDirectory(prefix="instance-settings-") as tmp:
        batch = {
            "scripts": [
                {"name": name, "path": write(tmp, name, source), "input": data}
                for name, source, data in entries
            ]
        }
        driver = write(tmp, "instance-settings-batch-driver.rb", driver_source)
        rc, stdout, stderr = run_rails(module, driver, json.dumps(batch, ensure_ascii=False))
    outcomes = batch_outcomes([e[0] for e in entries], rc, stdout, stderr, dry_run)
    module.exit_json(
        changed=any(o.get("changed") for o in outcomes.values()),
        failed_scripts=[n for n, o in outcomes.items() if o.get("failed")],
        by_script=outcomes,
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "script": {"type": "str"},
            "script_name": {"type": "str", "default": "script.rb"},
            "data": {"type": "dict"},
            "scripts": {"type": "list", "elements": "dict"},
            "driver": {"type": "str"},
            # Declared for the task interface (ansible-doc, ansible-lint's argument check);
            # the action plugin removes it before the module runs.
            "from_batch": {"type": "dict"},
            "chdir": {"type": "path", "required": True},
            "command_prefix": {"type": "list", "elements": "str", "default": []},
            "environment": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 600},
        },
        mutually_exclusive=[["script", "scripts"], ["scripts", "from_batch"]],
        required_one_of=[["script", "scripts"]],
        required_by={"script": ["data"]},
        supports_check_mode=True,
    )
    dry_run = bool(module.check_mode)
    if module.params["scripts"] is not None:
        run_many(module, dry_run)
    else:
        run_one(module, dry_run)


if __name__ == "__main__":
    main()
