#!/usr/bin/env python3
"""Benchmark: `instance-cli new --answers` on the example institution, in process and as a
whole command (a new Python process, as an operator runs it).

Runs each N times (default 10) into fresh temp directories and prints JSON with the median,
min and max wall-clock seconds of both. Goal: median < 1 s for each. Usage: bench_cli_new.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from instance_cli.cli import cli

REPO = Path(__file__).resolve().parents[2]
ANSWERS = REPO / "examples" / "answers" / "example-university.yml"
GOAL_SECONDS = 1.0


def one_run(runner: CliRunner) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"INSTANCE_CLI_CONFIG_DIR": os.path.join(tmp, "config"),
               "ANSIBLE_VAULT_PASSWORD_FILE": None}  # fmt: skip
        args = ["new", "--answers", str(ANSWERS), "--output-dir", os.path.join(tmp, "inv")]
        start = time.perf_counter()
        result = runner.invoke(cli, args, env=env)
        elapsed = time.perf_counter() - start
        if result.exit_code != 0:
            raise SystemExit(f"new failed: {result.output}")
        return elapsed


def one_command(command: list[str]) -> float:
    """The whole command in a new process: interpreter start, imports, work, exit."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"}
        env["INSTANCE_CLI_CONFIG_DIR"] = os.path.join(tmp, "config")
        args = ["new", "--answers", str(ANSWERS), "--output-dir", os.path.join(tmp, "inv")]
        start = time.perf_counter()
        done = subprocess.run([*command, *args], env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"new failed: {done.stdout.decode()} {done.stderr.decode()}")
        return elapsed


def summary(times: list[float]) -> dict[str, float | bool]:
    median = statistics.median(times)
    return {
        "median_seconds": round(median, 4),
        "min_seconds": round(min(times), 4),
        "max_seconds": round(max(times), 4),
        "meets_goal": median < GOAL_SECONDS,
    }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runner = CliRunner()
    first = one_run(runner)  # includes importing ansible's vault library once
    in_process = summary([one_run(runner) for _ in range(runs)])
    command = [sys.executable, "-m", "instance_cli"]
    whole = summary([one_command(command) for _ in range(runs)])
    print(
        json.dumps(
            {
                "benchmark": "instance-cli new --answers examples/answers/example-university.yml",
                "runs": runs,
                "goal_seconds": GOAL_SECONDS,
                "in_process": {"first_run_seconds": round(first, 4), **in_process},
                "whole_command": {"command": "python -m instance_cli", **whole},
                "goal_met": bool(in_process["meets_goal"] and whole["meets_goal"]),
            }
        )
    )


if __name__ == "__main__":
    main()
