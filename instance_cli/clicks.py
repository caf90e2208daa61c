"""What every command group shares: the help options and `Error: ...` for the library's errors."""

from __future__ import annotations

from typing import Any

import click

from instance_cli.errors import InstanceCliError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ErrorGroup(click.Group):
    """Turn every InstanceCliError into `Error: ...` on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InstanceCliError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
