"""The one error hierarchy of instance-cli; the click layer turns these into messages."""

from __future__ import annotations


class InstanceCliError(Exception):
    """Base class: a problem the user can fix. Exit code 1, message on stderr, no traceback.
    (Wrong usage - unknown options, bad option values - is click's, with exit code 2.)"""

    exit_code = 1


class ValidationError(InstanceCliError):
    """One or more invalid answers or inventory values; carries every problem at once."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = [f"{prefix}{p}" for p in self.problems]
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found:"
        super().__init__("\n".join([head, *("  " + line for line in lines)]))


class VaultError(InstanceCliError):
    """The vault password is missing or wrong, or the vault cannot be read."""


class ExistsError(InstanceCliError):
    """The target institution already exists and --force was not given."""
