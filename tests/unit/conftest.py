"""Shared fixtures of the instance-cli tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from instance_cli.cli import cli


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No instance-cli test reads the developer's vault passwords or secret env vars (used by
    `run` and `write_answers`, so every CLI invocation in these tests is isolated)."""
    config = tmp_path / "config"
    monkeypatch.setenv("INSTANCE_CLI_CONFIG_DIR", str(config))
    for var in (
        "ANSIBLE_VAULT_PASSWORD_FILE",
        "INSTANCE_CLI_SMTP_PASSWORD",
        "INSTANCE_CLI_OIDC_CLIENT_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    return config


@pytest.fixture
def write_answers(tmp_path: Path, isolated_env: Path) -> Callable[[Any], Path]:
    def _write(data: Any, name: str = "answers.yml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return path

    return _write


@pytest.fixture
def run(isolated_env: Path) -> Callable[..., Result]:
    runner = CliRunner()

    def _run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=True)

    return _run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many generated bad answers files the property tests really asserted."""
    import sys

    module = sys.modules.get("test_cli_properties")
    counts: dict[str, int] = getattr(module, "ASSERTED", {})
    if counts:
        parts = ", ".join(f"{name} {n}" for name, n in counts.items())
        terminalreporter.write_line(
            f"property tests: {sum(counts.values())} generated answers files asserted ({parts})"
        )
