"""run-scenarios.sh's lanes and snapshot order, on a copy of the test bed whose daemon, image and
molecule steps are stubs that only write down what they were asked to do. The runner itself is
the real script."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / "tests" / "testbed"
# The runner's own list (ALL_SCENARIOS=( ... ) in run-scenarios.sh), in its order.
_LISTED = re.search(
    r"^ALL_SCENARIOS=\(\n(.*?)^\)", (TESTBED / "run-scenarios.sh").read_text(), re.S | re.M
)
assert _LISTED is not None, "ALL_SCENARIOS=( ... ) missing in run-scenarios.sh"
SCENARIOS = _LISTED.group(1).split()

MOLECULE = """#!/bin/bash
# molecule <action> -s <scenario>
action="$1" s="$3"
[[ "$action" == destroy ]] && { echo "destroy $s" >> "$EVENTS"; exit 0; }
echo "start $s" >> "$EVENTS"
echo "log line 1 of $s"
[[ " $FAILS " == *" $s "* ]] && { echo "end-failed $s" >> "$EVENTS"; exit 3; }
case "$s" in bed) sleep 0.8 ;; site-debian12) sleep 1.6 ;; *) sleep 0.2 ;; esac
echo "log line 2 of $s"
echo "end $s" >> "$EVENTS"
"""
STUB = """#!/bin/bash
echo "{name} $*" >> "$EVENTS"
"""
DOCKER = """#!/bin/bash
# The runner asks the daemon only whether it answers and which containers it left.
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _make_bed(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    testbed = root / "tests" / "testbed"
    testbed.mkdir(parents=True)
    for name in ("run-scenarios.sh", "lib.sh", "scenario_report.py"):
        shutil.copy2(TESTBED / name, testbed / name)
    for name in ("ensure-docker.sh", "build-image.sh", "stop-docker.sh", "snapshot.sh"):
        _executable(testbed / name, STUB.format(name=name))
    for s in SCENARIOS:
        (root / "tests" / "molecule" / s).mkdir(parents=True)
        (root / "tests" / "molecule" / s / "molecule.yml").write_text("---\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "molecule", MOLECULE)
    _executable(bin_dir / "docker", DOCKER)
    return root


@pytest.fixture
def bed(tmp_path: Path) -> Path:
    return _make_bed(tmp_path)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, list[str]]:
    """One run with the defaults, shared by the tests that only read it."""
    return _run(_make_bed(tmp_path_factory.mktemp("lanes")))


def _run(bed: Path, **env: str) -> tuple[int, str, list[str]]:
    events = bed.parent / "events"
    events.unlink(missing_ok=True)
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "SCENARIOS", "FAIL_FAST")},
        "PATH": f"{bed.parent / 'bin'}:{os.environ['PATH']}",
        "EVENTS": str(events),
        **env,
    }
    proc = subprocess.run(
        ["bash", str(bed / "tests" / "testbed" / "run-scenarios.sh")],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = events.read_text().splitlines() if events.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, lines


def test_two_lanes_run_two_scenarios_at_once_and_every_scenario_runs(
    default_run: tuple[int, str, list[str]],
) -> None:
    rc, out, events = default_run
    assert rc == 0, out
    started = [e.split()[1] for e in events if e.startswith("start ")]
    assert sorted(started) == sorted(SCENARIOS)
    # bed and site-debian12 start together; site-debian13 takes bed's lane when bed ends.
    assert events.index("start site-debian12") < events.index("end bed")
    assert events.index("end bed") < events.index("start site-debian13")
    assert "total (wall, 2 lanes)" in out


def test_one_lane_runs_them_one_after_another(bed: Path) -> None:
    rc, out, events = _run(bed, SCENARIO_JOBS="1")
    assert rc == 0, out
    runs = [e for e in events if e.startswith(("start ", "end "))]
    assert runs == [f"{kind} {s}" for s in SCENARIOS for kind in ("start", "end")]


def test_a_log_is_printed_whole_when_its_scenario_ends(
    default_run: tuple[int, str, list[str]],
) -> None:
    rc, out, _ = default_run
    assert rc == 0
    for s in SCENARIOS:
        block = out.split(f"=== scenario: {s} ", 1)[1]
        body = block.split("\n", 1)[1].splitlines()
        assert body[:2] == [f"log line 1 of {s}", f"log line 2 of {s}"]


def test_a_consumer_starts_after_its_producer_and_after_the_snapshot_check(bed: Path) -> None:
    rc, out, events = _run(bed, SCENARIO_JOBS="8")
    assert rc == 0, out
    # With eight lanes everything else starts at once, but settings waits for site-debian12.
    assert events.index("end site-debian12") < events.index("snapshot.sh ensure site-debian12")
    assert events.index("snapshot.sh ensure site-debian12") < events.index("start settings")


def test_a_failed_producer_fails_its_consumer_unrun_and_the_others_still_run(bed: Path) -> None:
    rc, out, events = _run(bed, FAILS="site-debian12")
    assert rc != 0
    assert "start settings" not in events
    assert not any(e.startswith("snapshot.sh ensure") for e in events)
    assert "settings not run: it starts from the snapshot of site-debian12, which failed" in out
    assert {"end bed", "end site-debian13", "end nginx"} <= set(events)
    table = out.split("=== scenario timings", 1)[1]
    assert any(line.split()[:2] == ["settings", "FAILED"] for line in table.splitlines())


def test_fail_fast_starts_nothing_after_a_failure(bed: Path) -> None:
    rc, out, events = _run(bed, FAIL_FAST="1", FAILS="bed")
    assert rc != 0
    started = [e.split()[1] for e in events if e.startswith("start ")]
    assert sorted(started) == ["bed", "site-debian12"]  # site-debian12 was already running
    assert "site-debian13                NOT RUN" in out


def test_a_bad_lane_count_is_refused(bed: Path) -> None:
    rc, out, events = _run(bed, SCENARIO_JOBS="0")
    assert rc != 0
    assert "SCENARIO_JOBS must be a whole number >= 1, got '0'" in out
    assert not any(e.startswith("start ") for e in events)
