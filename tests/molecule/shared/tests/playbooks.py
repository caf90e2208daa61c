"""Run one of the repository's playbooks from a scenario's tests, the way an operator would, and
read what it did: ansible-playbook with the JSON callback against the scenario's inventory."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[4]


def quiet_config(name: str) -> str:
    """The repository's ansible.cfg without the timing callback, so stdout is one JSON document."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "ansible.cfg")
    config.remove_option("defaults", "callbacks_enabled")
    directory = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"))
    path = directory / f"{name}-ansible.cfg"
    with path.open("w") as handle:
        config.write(handle)
    return str(path)


def run_playbook(
    playbook: str, *args: str, timeout: int = 1800, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    """(exit code, the JSON callback's document or None, stdout + stderr)."""
    environment = dict(os.environ)
    environment.update(
        ANSIBLE_CONFIG=quiet_config(Path(playbook).stem),
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        **(env or {}),
    )
    # The inventory directory: molecule's generated hosts plus the scenario's links (hosts.yml
    # with the group tree, group_vars, host_vars), as in the scenario's own steps.
    argv = [
        str(REPO / ".venv/bin/ansible-playbook"),
        "-i",
        str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent),
        str(REPO / "playbooks" / playbook),
        *args,
    ]
    proc = subprocess.run(
        argv, env=environment, cwd=REPO, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    start = proc.stdout.find("{")
    doc = None
    if start >= 0:
        try:
            doc = json.loads(proc.stdout[start:])
        except ValueError:
            doc = None
    if proc.returncode == 0 and doc is not None and not doc.get("stats"):
        # "no hosts matched" exits 0: a test must never pass on a play that ran nowhere.
        raise AssertionError(f"{playbook} {' '.join(args)} ran on no host:\n{proc.stdout[-2000:]}")
    return proc.returncode, doc, proc.stdout + proc.stderr


def task_results(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    """Task name -> that host's result."""
    out = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result is not None:
                out[task["task"]["name"]] = result
    return out


def failure_messages(doc: dict[str, Any] | None, text: str) -> str:
    """Every failed task's message, for assertions on what an operator is told."""
    if doc is None:
        return text
    messages = []
    for play in doc["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed"):
                    messages.append(str(result.get("msg", "")) + str(result.get("stderr", "")))
    return "\n".join(messages) or text
