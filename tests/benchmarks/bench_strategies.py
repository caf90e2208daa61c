"""Benchmark: Ansible's default `linear` strategy beside Mitogen's `mitogen_linear`, in one run.

For each strategy, on its own fresh test-bed container, interleaved so that the machine's load
drifts over both alike: first converge of playbooks/site.yml, then a no-op re-run (must report
0 changed), then the cost of one module call (20 `stat` calls, per call). Prints one JSON object;
`goal_met` says whether the Mitogen re-run took at most half the default's (issue 13's goal).

Mitogen redirects only connection plugins it knows by their short name, so its containers are
reached with `ansible_connection: docker` (the same docker CLI transport community.docker's
plugin uses), the default strategy's with `community.docker.docker` as the scenarios do.

    .venv/bin/python tests/benchmarks/bench_strategies.py [--image instance-testbed:debian12]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_site_converge import (
    COMMON,
    REPO,
    docker,
    playbook,
    playbook_env,
    prepare_scratch,
    start_container,
)

GOAL = 0.5  # the Mitogen no-op re-run at most half the default's, measured in the same run
STAT_CALLS = 20


@dataclass
class Strategy:
    name: str
    container: str
    connection: str
    env: dict[str, str]
    scratch: Path


def mitogen_strategy_dir() -> str:
    import ansible_mitogen  # the pinned `mitogen` package from requirements/dev.lock

    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def strategies() -> list[Strategy]:
    out = []
    for name, container, connection in (
        ("linear", "db-bench-linear", "community.docker.docker"),
        ("mitogen_linear", "db-bench-mitogen", "docker"),
    ):
        scratch = prepare_scratch(f"bench-{name}-", container, connection)
        env = playbook_env(scratch) | {"ANSIBLE_STRATEGY": name}
        if name.startswith("mitogen"):
            env["ANSIBLE_STRATEGY_PLUGINS"] = mitogen_strategy_dir()
        out.append(Strategy(name, container, connection, env, scratch))
    return out


def stat_playbook(directory: Path) -> Path:
    path = directory / "stat.yml"
    path.write_text(
        "---\n- name: Cost of one module call\n  hosts: example-1\n  gather_facts: false\n"
        "  tasks:\n    - name: Stat one file\n      ansible.builtin.stat:\n"
        "        path: /etc/hostname\n"
        f'      loop: "{{{{ range({STAT_CALLS}) | list }}}}"\n'
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="instance-testbed:debian12")
    parser.add_argument("--keep", action="store_true", help="keep the containers and logs")
    args = parser.parse_args()
    runs = strategies()
    site = REPO / "playbooks" / "site.yml"
    stat = stat_playbook(Path(tempfile.mkdtemp(prefix="bench-stat-")))
    results: dict[str, dict[str, float | int]] = {s.name: {} for s in runs}
    started = time.monotonic()
    try:
        for s in runs:
            start_container(args.image, s.container)
            playbook(s.scratch, COMMON / "prepare.yml",
                     s.scratch / "prepare.log", s.env)  # fmt: skip
        for phase in ("first", "rerun"):  # interleaved: linear, mitogen, linear, mitogen
            for s in runs:
                log = s.scratch / f"{phase}.log"
                seconds, counts = playbook(s.scratch, site, log, s.env)
                results[s.name][f"{phase}_seconds"] = round(seconds, 1)
                results[s.name][f"{phase}_changed"] = counts["changed"]
                results[s.name][f"{phase}_ok_tasks"] = counts["ok"]
        for s in runs:
            seconds, _ = playbook(s.scratch, stat,
                                  s.scratch / "stat.log", s.env)  # fmt: skip
            results[s.name]["seconds_per_module_call"] = round(seconds / STAT_CALLS, 3)
    finally:
        if not args.keep:
            for s in runs:
                docker("rm", "-f", s.container, check=False)
                shutil.rmtree(s.scratch, ignore_errors=True)
            shutil.rmtree(stat.parent, ignore_errors=True)
    linear, mitogen = results["linear"], results["mitogen_linear"]
    ratio = float(mitogen["rerun_seconds"]) / float(linear["rerun_seconds"])
    print(
        json.dumps(
            {
                "benchmark": "strategies",
                "image": args.image,
                "strategies": results,
                "rerun_ratio_mitogen_over_linear": round(ratio, 3),
                "goal_ratio_max": GOAL,
                "goal_met": ratio <= GOAL
                and linear["rerun_changed"] == 0
                and mitogen["rerun_changed"] == 0,
                "total_seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
