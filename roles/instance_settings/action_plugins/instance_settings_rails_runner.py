"""Controller side of the module instance_settings_rails_runner.

When a task passes `from_batch` (its script's entry of an earlier multi-script run of the
module) and that entry fits (same script name, same check mode), this plugin returns it
without connecting to the host: the script already ran in the shared Rails process. Otherwise
the module runs on the host as usual, without `from_batch`; this plugin is the only place that
decides reuse. A multi-script run (`scripts`) gets the role's Ruby batch driver,
files/batch_driver.rb, as the module's `driver` option: modules run on the host and cannot read
the role's files, so the controller reads it, as it reads each part's script for its task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# ansible-core has no type information (no py.typed, no stubs): ActionBase is Any to mypy.
from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

# The role's files/ directory, next to this plugin's directory (the driver belongs to the
# module of this role, so it is not looked up along the play's search path).
DRIVER = Path(__file__).resolve().parent.parent / "files" / "batch_driver.rb"


def reusable(from_batch: Any, name: str, dry_run: bool) -> dict[str, Any] | None:
    """The batch entry for script `name` in this check mode, or None when it does not fit."""
    if not isinstance(from_batch, dict):
        return None
    if from_batch.get("script_name") != name or from_batch.get("dry_run") is not dry_run:
        return None
    return dict(from_batch)


class ActionModule(ActionBase):  # type: ignore[misc]  # ActionBase is untyped (Any)
    """Return the shared run's result for this script, or run the module."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        del tmp  # unused, kept for the ActionBase signature
        result: dict[str, Any] = super().run(task_vars=task_vars)
        args = dict(self._task.args)
        from_batch = args.pop("from_batch", None)
        if "scripts" in args:
            args["driver"] = DRIVER.read_text(encoding="utf-8")
        else:
            name = str(args.get("script_name") or "script.rb").rsplit("/", 1)[-1]
            reused = reusable(from_batch, name, bool(self._task.check_mode))
            if reused is not None:
                reused["reused_from_batch"] = True
                result.update(reused)
                return result
        result.update(
            self._execute_module(
                module_name=self._task.action, module_args=args, task_vars=task_vars
            )
        )
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
