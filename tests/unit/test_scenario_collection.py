"""Every scenario's verifier collects: the files molecule hands pytest (the scenario's tests/
and its additional_files_or_dirs) import, with their conftest.py files, before any container
exists. An import error there would otherwise show only after a scenario's 20-minute converge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = ROOT / "tests" / "molecule"
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


def verifier_files(scenario: Path) -> list[str]:
    """What molecule's testinfra verifier passes to pytest, relative to the scenario's tests/."""
    verifier = yaml.safe_load((scenario / "molecule.yml").read_text(encoding="utf-8"))["verifier"]
    tests = scenario / verifier.get("directory", "tests")
    extra = [str((tests / e).resolve()) for e in verifier.get("additional_files_or_dirs", [])]
    return [*extra, *(str(p) for p in sorted(tests.glob("test_*.py")))]


def inventory(scenario: Path, scratch: Path) -> Path:
    """The hosts and groups molecule's inventory would give testinfra: each platform in its
    `groups`, and the groups of the hosts file the scenario links, if any."""
    config = yaml.safe_load((scenario / "molecule.yml").read_text(encoding="utf-8"))
    children: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
    hosts: dict[str, dict[str, object]] = {}
    for platform in config.get("platforms", []):
        hosts[platform["name"]] = {}
        for group in platform.get("groups", []):
            children.setdefault(group, {"hosts": {}})["hosts"][platform["name"]] = {}
    path = scratch / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": children}}))
    linked = config.get("provisioner", {}).get("inventory", {}).get("links", {}).get("hosts")
    if linked:
        return scenario / linked  # its own groups; molecule adds nothing a test reads
    return path


def collect(scenario: Path, files: list[str], scratch: Path) -> subprocess.CompletedProcess[str]:
    listed = inventory(scenario, scratch)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MOLECULE_SCENARIO_DIRECTORY": str(scenario),
        "MOLECULE_INVENTORY_FILE": str(listed),
        "SITE_REPO_ROOT": str(ROOT),
        "SITE_TEST_DIR": str(scratch),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "--connection", "ansible", "--ansible-inventory", str(listed),
         *files],
        cwd=scenario, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_scenarios_verifier_collects(name: str, tmp_path: Path) -> None:
    scenario = MOLECULE / name
    files = verifier_files(scenario)
    assert files, f"{name} has no tests"
    done = collect(scenario, files, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " collected" in done.stdout or "tests collected" in done.stdout, done.stdout[-500:]


def test_a_conftest_that_imports_a_missing_name_is_caught(tmp_path: Path) -> None:
    # The shape of the failure this guards against: a conftest importing a fixture that moved.
    scenario = tmp_path / "scenario"
    (scenario / "tests").mkdir(parents=True)
    (scenario / "molecule.yml").write_text("platforms: []\nverifier: {name: testinfra}\n")
    (scenario / "tests" / "conftest.py").write_text("from os import no_such_fixture\n")
    (scenario / "tests" / "test_one.py").write_text("def test_one() -> None:\n    pass\n")
    done = collect(scenario, [str(scenario / "tests" / "test_one.py")], tmp_path)
    assert done.returncode != 0 and "ImportError" in done.stdout + done.stderr
