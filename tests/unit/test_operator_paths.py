"""What an operator meets around the roles: the linters skip what the project generates, the
demo keeps its state to itself, and every measured number in the README carries its date."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from yamllint.config import YamlLintConfig

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO = ROOT / "tests" / "demo"
EXAMPLE_PASSWORD = ROOT / "examples" / "example-university.vault-pass"

# Files the project itself writes while it runs; none of them is committed.
GENERATED = (
    "tests/.artifacts/demo-mastodon-demo/hosts-overlay.yml",
    "tests/.artifacts/scenario-site-debian12/inventory.yml",
    "tests/testbed/.work/rootfs-debian12/etc/example.yml",
    "inventories/example/state/last-deploy.yml",
)


def _ansible(tool: str, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run an Ansible command of the venv from the repository, with a clean Ansible environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    clean.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_VAULT_PASSWORD_FILE=str(EXAMPLE_PASSWORD),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        PATH=f"{BIN}:{clean.get('PATH', '')}",
        **env,
    )
    result = subprocess.run(
        [str(BIN / tool), *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result


# --- linting ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GENERATED)
def test_yamllint_never_reads_a_generated_file(path: str) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not git-ignored, so it is no generated file"
    config = YamlLintConfig(file=str(ROOT / ".yamllint"))
    assert config.is_file_ignored(path), f"yamllint would lint the generated {path}"


def test_yamllint_still_reads_the_committed_inventory() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint"))
    for path in ("inventories/example/hosts.yml", "tests/demo/hosts-overlay.yml"):
        assert not config.is_file_ignored(path), f"{path} is committed and must be linted"
    assert config.is_file_ignored("inventories/example/group_vars/all/vault.yml")


def test_the_demo_overlay_is_a_committed_lint_clean_file_not_generated() -> None:
    script = (DEMO / "run.sh").read_text(encoding="utf-8")
    assert "<<YAML" not in script, "run.sh writes YAML into the scratch directory again"
    lint = subprocess.run(
        [str(BIN / "yamllint"), "--strict", "tests/demo/hosts-overlay.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


def test_the_demo_overlay_points_the_example_host_at_the_demo_container(tmp_path: Path) -> None:
    result = _ansible(
        "ansible",
        tmp_path,
        "example-1",
        "-i",
        "inventories/example",
        "-i",
        "tests/demo/hosts-overlay.yml",
        "-m",
        "ansible.builtin.debug",
        "-a",
        "msg={{ ansible_host }}|{{ ansible_connection }}",
        DEMO_CONTAINER="demo-under-test",
    )
    assert "msg: demo-under-test|community.docker.docker" in result.stdout


# --- the demo's state ---------------------------------------------------------------------


def _run_state_play(tmp_path: Path, *extra: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Run only site.yml's controller-side state play against a copy of the example."""
    inventory = tmp_path / "example"
    shutil.copytree(ROOT / "inventories" / "example", inventory)
    shutil.rmtree(inventory / "state", ignore_errors=True)
    result = _ansible(
        "ansible-playbook",
        tmp_path,
        "-i",
        str(inventory),
        "playbooks/site.yml",
        "--tags",
        "state",
        "-e",
        "mastodon_version=v4.5.1",
        *extra,
        ANSIBLE_GATHERING="explicit",
    )
    return inventory, result


def test_site_records_the_deployment_in_the_inventory_by_default(tmp_path: Path) -> None:
    inventory, _ = _run_state_play(tmp_path)
    state = yaml.safe_load((inventory / "state" / "last-deploy.yml").read_text())
    assert state["mastodon_version"] == "v4.5.1"


def test_site_state_dir_keeps_a_demo_deployment_out_of_the_inventory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "demo-scratch" / "state"
    inventory, _ = _run_state_play(tmp_path, "-e", f"site_state_dir={elsewhere}")
    assert not (inventory / "state").exists(), "the demo's record landed in the inventory"
    state = yaml.safe_load((elsewhere / "last-deploy.yml").read_text())
    assert state["mastodon_version"] == "v4.5.1"


def test_the_demo_keeps_its_record_in_the_scratch_it_removes() -> None:
    script = (DEMO / "run.sh").read_text(encoding="utf-8")
    calls = re.findall(r"ansible-playbook [^\n]*\\\n[^\n]*", script)
    assert calls, "run.sh no longer calls ansible-playbook"
    for call in calls:
        assert '-e "site_state_dir=$scratch/state"' in call, call


def test_demo_down_removes_the_demo_state(tmp_path: Path) -> None:
    name = f"unit-demo-{os.getpid()}"
    scratch = ROOT / "tests" / ".artifacts" / f"demo-{name}"
    (scratch / "state").mkdir(parents=True)
    (scratch / "state" / "last-deploy.yml").write_text("---\nmastodon_version: v4.5.1\n")
    try:
        env = dict(os.environ, DEMO_CONTAINER=name, DOCKER_HOST=f"unix://{tmp_path}/no.sock")
        down = subprocess.run(
            ["bash", str(DEMO / "run.sh"), "--down"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert not scratch.exists(), "make demo-down left the demo's state behind"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the README's numbers -----------------------------------------------------------------

_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|seconds|minutes|min)\b")
_DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2} (?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December) \d{4}\b"
)
_MACHINE = re.compile(r"\b\d+[ -]cores?\b|machine")
_GOAL = re.compile(r"\bgoals?\b[^,;)]*")  # a goal is no measurement


def _paragraphs(markdown: str) -> list[str]:
    out, block = [], []
    for line in markdown.splitlines():
        if line.strip() and not line.startswith("#"):
            block.append(line)
        elif block:
            out.append("\n".join(block))
            block = []
    if block:
        out.append("\n".join(block))
    return out


def measured_paragraphs_without_date(markdown: str) -> list[str]:
    """Paragraphs (or table rows) that quote a measured duration but carry no date and machine."""
    bad = []
    for para in _paragraphs(markdown):
        units = [para] if not para.startswith("|") else para.splitlines()
        for unit in units:
            dated = _DATE.search(unit) and _MACHINE.search(unit)
            if _DURATION.search(_GOAL.sub("", unit)) and not dated:
                bad.append(unit[:160])
    return bad


def test_every_measured_number_in_the_readme_is_dated() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    undated = measured_paragraphs_without_date(text)
    assert not undated, "measured numbers without date and machine:\n" + "\n".join(undated)


def test_the_date_check_catches_an_undated_number() -> None:
    assert measured_paragraphs_without_date("`make demo` takes about 10 minutes (556 s).")
    assert measured_paragraphs_without_date("| site | 500 s |")
    assert not measured_paragraphs_without_date("`new --answers` (goal < 1 s)")
    assert not measured_paragraphs_without_date(
        "Measured on 1 December 2026, on this 2-core machine: `make demo` took 466 s."
    )
