"""The scenario runner's report never lets a CI run pass on a subset of the scenarios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "testbed"))

from scenario_report import Step, judge, main  # noqa: E402

ALL = ["bed", "nginx", "site-debian12"]


def _steps(*names: str, result: str = "ok") -> list[Step]:
    return [Step("(docker)", "ok", 1), *(Step(n, result, 10) for n in names)]


def test_a_full_run_passes_and_names_nothing_as_not_run() -> None:
    verdict = judge(_steps(*ALL), ALL, [], ci=True, budget=100)
    assert verdict.ok and verdict.not_run == []
    assert not any("NOT RUN" in line for line in verdict.lines)


def test_under_ci_a_run_that_skipped_a_scenario_fails_and_names_it() -> None:
    verdict = judge(_steps("bed", "nginx"), ALL, [], ci=True, budget=100)
    assert not verdict.ok
    assert verdict.not_run == ["site-debian12"]
    assert any(line.startswith("site-debian12") and "NOT RUN" in line for line in verdict.lines)


def test_outside_ci_a_chosen_subset_passes_but_still_lists_what_did_not_run() -> None:
    verdict = judge(_steps("bed"), ALL, [], ci=False, budget=100)
    assert verdict.ok
    assert verdict.not_run == ["nginx", "site-debian12"]


def test_a_failed_scenario_fails_the_report() -> None:
    steps = [*_steps("bed", "nginx"), Step("site-debian12", "FAILED", 3)]
    assert not judge(steps, ALL, [], ci=False, budget=100).ok


def test_the_table_prints_the_total_against_the_budget() -> None:
    lines = judge(_steps(*ALL), ALL, [], ci=False, budget=20).lines
    assert any(line.startswith("total") and line.rstrip().endswith("31") for line in lines)
    assert any("OVER BUDGET by 11 s" in line for line in lines)


def test_with_lanes_the_budget_is_judged_on_the_wall_time() -> None:
    # Four 10 s scenarios in two lanes took 21 s of wall time: within a 25 s budget, although
    # their seconds add up to 41.
    verdict = judge(_steps(*ALL, "settings"), ALL, [], ci=False, budget=25, wall=21, jobs=2)
    assert verdict.total == 21
    assert any(
        line.startswith("sum of the steps") and line.rstrip().endswith("41")
        for line in verdict.lines
    )
    assert any("within budget" in line for line in verdict.lines)
    assert any(
        "OVER BUDGET by 16 s" in line
        for line in judge(_steps(*ALL), ALL, [], ci=False, budget=25, wall=41, jobs=2).lines
    )


def test_the_command_writes_the_json_and_exits_non_zero_on_a_ci_subset(tmp_path: Path) -> None:
    out = tmp_path / "timings.json"
    code = main(["--out", str(out), "--all", " ".join(ALL), "--ci", "--", "bed=ok=5"])
    assert code == 1
    data = json.loads(out.read_text())
    assert data["not_run"] == ["nginx", "site-debian12"]
    assert data["steps"] == [{"name": "bed", "result": "ok", "seconds": 5}]


def test_run_scenarios_refuses_an_inherited_subset_under_ci(tmp_path: Path) -> None:
    # The check comes before docker is touched, so no daemon is needed to see it refuse.
    env = {
        **os.environ,
        "CI": "true",
        "SCENARIOS": "bed",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
    }
    run = subprocess.run(
        ["bash", str(ROOT / "tests" / "testbed" / "run-scenarios.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert "would skip: site-debian12" in run.stderr
