"""`make bench` fails when a benchmark fails, and each benchmark says whether it met its goal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make_bench(*scripts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "bench", f"BENCHMARKS={' '.join(str(s) for s in scripts)}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_bench_fails_when_an_early_benchmark_fails(tmp_path: Path) -> None:
    failing = tmp_path / "bench_fails.py"
    failing.write_text("raise SystemExit('benchmark broke')\n")
    passing = tmp_path / "bench_passes.py"
    passing.write_text("print('{\"goal_met\": true}')\n")
    assert _make_bench(passing).returncode == 0
    result = _make_bench(failing, passing)
    assert result.returncode != 0, "a failing benchmark was masked by the one after it"
    assert "benchmark broke" in result.stderr


def test_the_cli_benchmark_measures_the_whole_command_and_reports_its_goal() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / "bench_cli_new.py"), "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    assert isinstance(report["goal_met"], bool)
    for part in ("in_process", "whole_command"):
        numbers = report[part]
        assert 0 < numbers["min_seconds"] <= numbers["median_seconds"] <= numbers["max_seconds"]
        assert numbers["meets_goal"] == (numbers["median_seconds"] < report["goal_seconds"])
    # A new process pays for the interpreter and the imports: it cannot be faster than in process.
    assert report["whole_command"]["min_seconds"] > report["in_process"]["min_seconds"]
