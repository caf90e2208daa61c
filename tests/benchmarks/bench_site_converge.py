"""Benchmark: first converge of playbooks/site.yml on a fresh container, then a no-op re-run.

Prints one JSON object: both wall-clock times, the ratio re-run / first (goal <= 0.15) and the
changed count of the re-run (must be 0). Uses the committed example institution with its
TEST-ONLY vault password, the Mastodon STAND-IN and the test switches of
tests/molecule/site-common/test-overrides.yml, in a test-bed container named db-bench-site
(removed afterwards, also on failure).

    .venv/bin/python tests/benchmarks/bench_site_converge.py [--image instance-testbed:debian12]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COMMON = REPO / "tests" / "molecule" / "site-common"
CONTAINER = "db-bench-site"
GOAL = 0.15


def docker(*args: str, check: bool = True, timeout: float = 300) -> str:
    out = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and out.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def start_container(image: str, name: str = CONTAINER) -> None:
    docker("rm", "-f", name, check=False)
    docker(
        "run", "-d", "--name", name, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--cgroupns", "host",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
        image,
    )  # fmt: skip
    # systemd's bus needs a moment before `is-system-running` can answer: retry, bounded.
    state, deadline = "", time.monotonic() + 180
    while state not in {"running", "degraded"} and time.monotonic() < deadline:
        state = docker(
            "exec", name, "timeout", "120", "systemctl", "is-system-running", "--wait",
            check=False, timeout=150,
        )  # fmt: skip
        if state not in {"running", "degraded"}:
            time.sleep(2)
    if state not in {"running", "degraded"}:
        raise SystemExit(f"{name} did not boot: {state!r}")


def recap(text: str, key: str) -> int:
    """The sum of one counter (ok, changed, skipped, ...) over the last PLAY RECAP of a log."""
    return sum(int(n) for n in re.findall(rf"\b{key}=(\d+)", text.split("PLAY RECAP")[-1]))


def prepare_scratch(prefix: str, container: str, connection: str) -> Path:
    """A scratch directory with an overlay pointing the example's host at the container; the
    deployment record lands there too (site_state_dir), never in the repository's inventory."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    (scratch / "hosts-overlay.yml").write_text(
        f"---\nall:\n  hosts:\n    example-1:\n      ansible_host: {container}\n"
        f"      ansible_connection: {connection}\n"
    )
    return scratch


def playbook_env(scratch: Path) -> dict[str, str]:
    return os.environ | {
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(REPO / "examples" / "example-university.vault-pass"),
        "ANSIBLE_PIPELINING": "True",
        "SITE_REPO_ROOT": str(REPO),
        "SITE_TEST_DIR": str(scratch),
    }


def playbook(
    scratch: Path, name: Path, log: Path, env: dict[str, str], *extra: str
) -> tuple[float, dict[str, int]]:
    """Run one playbook; return (seconds, recap counters) or exit with the log's tail."""
    argv = [
        str(VENV_BIN / "ansible-playbook"),
        "-i", str(REPO / "inventories" / "example"), "-i", str(scratch / "hosts-overlay.yml"),
        "-e", f"@{COMMON / 'test-overrides.yml'}", "-e", f"site_state_dir={scratch / 'state'}",
        *extra,
        str(name),
    ]  # fmt: skip
    start = time.monotonic()
    with log.open("w") as handle:
        done = subprocess.run(
            argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.monotonic() - start
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"{name.name} failed (log: {log})")
    return seconds, {key: recap(text, key) for key in ("ok", "changed", "skipped")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="instance-testbed:debian12")
    parser.add_argument("--keep", action="store_true", help="keep the container and logs")
    args = parser.parse_args()

    scratch = prepare_scratch("bench-site-", CONTAINER, "community.docker.docker")
    env = playbook_env(scratch)
    try:
        start_container(args.image)
        playbook(scratch, COMMON / "prepare.yml", scratch / "prepare.log", env)
        site = REPO / "playbooks" / "site.yml"
        first, first_counts = playbook(scratch, site, scratch / "first.log", env)
        rerun, rerun_counts = playbook(scratch, site, scratch / "rerun.log", env)
    finally:
        if not args.keep:
            docker("rm", "-f", CONTAINER, check=False)
            shutil.rmtree(scratch, ignore_errors=True)
    ratio = rerun / first
    print(
        json.dumps(
            {
                "benchmark": "site_converge",
                "image": args.image,
                "first_converge_seconds": round(first, 1),
                "first_converge_changed": first_counts["changed"],
                "rerun_seconds": round(rerun, 1),
                "rerun_changed": rerun_counts["changed"],
                # Tasks the re-run executed (ok) and skipped: a no-op re-run costs roughly a
                # fixed time per executed task (see tests/benchmarks/README.md).
                "rerun_ok_tasks": rerun_counts["ok"],
                "rerun_skipped_tasks": rerun_counts["skipped"],
                "rerun_seconds_per_ok_task": round(rerun / max(rerun_counts["ok"], 1), 3),
                "ratio_rerun_over_first": round(ratio, 3),
                "goal_ratio_max": GOAL,
                "goal_met": ratio <= GOAL and rerun_counts["changed"] == 0,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
