"""The scenario runner's closing report: a timing table, the JSON artefact, and the verdict on
coverage. run-scenarios.sh calls it once at exit with what ran; it prints every scenario of
ALL_SCENARIOS that did not run, and under CI=true it fails when one did not run, so that a CI run
can never pass on a subset (an inherited SCENARIOS, FAIL_FAST, an interrupted run).

    python3 scenario_report.py --out FILE --all "a b" --pending "c" --budget 1320 [--ci] \
        [--jobs 2 --wall SECONDS] -- NAME=RESULT=SECONDS ...

With lanes (--jobs > 1) the scenarios' seconds add up to more than the run took, so the budget
is judged against the wall time (--wall), and the table prints both.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    name: str
    result: str
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Step:
        name, result, seconds = text.rsplit("=", 2)
        return cls(name, result, int(seconds))


@dataclass(frozen=True)
class Verdict:
    lines: list[str]
    not_run: list[str]
    ok: bool
    total: int


def judge(
    steps: list[Step],
    all_scenarios: list[str],
    pending: list[str],
    ci: bool,
    budget: int,
    wall: int | None = None,
    jobs: int = 1,
) -> Verdict:
    summed = sum(s.seconds for s in steps)
    total = summed if wall is None else wall
    lines = ["", "=== scenario timings", f"{'scenario':<28} {'result':<7} {'seconds':>8}"]
    lines += [f"{s.name:<28} {s.result:<7} {s.seconds:>8}" for s in steps]
    if wall is not None:
        lines.append(f"{'sum of the steps':<28} {'':<7} {summed:>8}")
        lines.append(f"{f'total (wall, {jobs} lanes)':<28} {'':<7} {total:>8}")
    else:
        lines.append(f"{'total':<28} {'':<7} {total:>8}")
    lines.append(
        f"{'budget':<28} {'':<7} {budget:>8}  "
        + ("within budget" if total <= budget else f"OVER BUDGET by {total - budget} s")
    )
    ran = {s.name for s in steps}
    not_run = [name for name in all_scenarios if name not in ran]
    for name in not_run:
        lines.append(f"{name:<28} NOT RUN (in ALL_SCENARIOS, but this run did not reach it)")
    for name in pending:
        if name not in ran:
            lines.append(f"{name:<28} NOT RUN (pending, see PENDING_SCENARIOS in run-scenarios.sh)")
    failed = [s.name for s in steps if not s.result.startswith("ok")]
    ok = not failed and not (ci and not_run)
    if ci and not_run:
        lines.append(
            "CI=true: every scenario of ALL_SCENARIOS must run; not run: " + " ".join(not_run)
        )
    return Verdict(lines, not_run, ok, total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--all", default="")
    parser.add_argument("--pending", default="")
    parser.add_argument("--budget", type=int, default=1320)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--wall", type=int, default=None)
    parser.add_argument("--ci", action="store_true")
    parser.add_argument("steps", nargs="*")
    args = parser.parse_args(argv)
    steps = [Step.parse(s) for s in args.steps]
    verdict = judge(
        steps, args.all.split(), args.pending.split(), args.ci, args.budget, args.wall, args.jobs
    )
    print("\n".join(verdict.lines))
    args.out.write_text(
        json.dumps(
            {
                "total_seconds": verdict.total,
                "sum_of_steps_seconds": sum(s.seconds for s in steps),
                "jobs": args.jobs,
                "budget_seconds": args.budget,
                "steps": [s.__dict__ for s in steps],
                "not_run": verdict.not_run,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
