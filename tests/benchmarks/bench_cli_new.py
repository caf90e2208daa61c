#!/usr/bin/env python3
"""Benchmark: `instance-cli new --answers` on the example institution, in-process.

Runs N times (default 10) into fresh temp directories and prints JSON with the median,
min and max wall-clock seconds. Goal: median < 1 s. Usage: bench_cli_new.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
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


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runner = CliRunner()
    first = one_run(runner)  # includes importing ansible's vault library once
    times = [one_run(runner) for _ in range(runs)]
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "benchmark": "instance-cli new --answers examples/answers/example-university.yml",
                "runs": runs,
                "first_run_seconds": round(first, 4),
                "median_seconds": round(median, 4),
                "min_seconds": round(min(times), 4),
                "max_seconds": round(max(times), 4),
                "goal_seconds": GOAL_SECONDS,
                "meets_goal": median < GOAL_SECONDS,
            }
        )
    )


if __name__ == "__main__":
    main()
