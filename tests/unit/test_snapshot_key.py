"""Snapshots of converged instances: the key changes with everything that shaped the container
and with nothing else, and the producers and consumers are wired as the runner expects."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "testbed"))

from snapshot_key import SHAPED_BY, main, shaping_paths, snapshot_key  # noqa: E402

RUN_SCENARIOS = ROOT / "tests" / "testbed" / "run-scenarios.sh"


def _copy(tmp_path: Path, producer: str) -> Path:
    """A copy of the files that shape the producer's snapshot, nothing else."""
    root = tmp_path / "repo"
    for rel in shaping_paths(producer, ROOT):
        source, target = ROOT / rel, root / rel
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


def _snapshot_of() -> dict[str, str]:
    text = RUN_SCENARIOS.read_text(encoding="utf-8")
    block = re.search(r"^declare -A SNAPSHOT_OF=\(\n(.*?)^\)", text, re.S | re.M)
    assert block is not None, "SNAPSHOT_OF=( ... ) missing in run-scenarios.sh"
    return dict(re.findall(r"^\s*\[([a-z0-9-]+)\]=([a-z0-9-]+)\s*$", block.group(1), re.M))


@pytest.mark.parametrize("producer", sorted(SHAPED_BY))
def test_every_shaping_path_exists(producer: str) -> None:
    missing = [rel for rel in shaping_paths(producer, ROOT) if not (ROOT / rel).exists()]
    assert not missing


def test_the_roles_that_shape_the_site_snapshot_are_the_ones_site_yml_applies() -> None:
    roles = shaping_paths("site-debian12", ROOT)
    applied = [
        f"roles/{name}"
        for name in ("common", "instance_settings", "mastodon", "nginx", "postgresql", "redis")
    ]
    assert [rel for rel in roles if rel.startswith("roles/")] == applied
    assert "roles/backup" not in roles  # backup.yml applies it, site.yml does not


def test_the_key_is_stable_and_follows_every_shaping_change(tmp_path: Path) -> None:
    root = _copy(tmp_path, "site-debian12")
    key = snapshot_key("site-debian12", root, "sha256:base")
    assert key == snapshot_key("site-debian12", root, "sha256:base")
    assert key != snapshot_key("site-debian12", root, "sha256:other-base")

    task = root / "roles" / "mastodon" / "tasks" / "main.yml"
    original = task.read_bytes()
    task.write_bytes(original + b"\n# a comment is a change too\n")
    assert snapshot_key("site-debian12", root, "sha256:base") != key
    task.write_bytes(original)
    assert snapshot_key("site-debian12", root, "sha256:base") == key

    (root / "tests" / "standin" / "new-file.rb").write_text("# shapes the stand-in\n")
    assert snapshot_key("site-debian12", root, "sha256:base") != key
    (root / "tests" / "standin" / "new-file.rb").unlink()

    # A role that site.yml starts to apply shapes the container from then on.
    (root / "roles" / "extra" / "tasks").mkdir(parents=True)
    (root / "roles" / "extra" / "tasks" / "main.yml").write_text("---\n[]\n")
    assert snapshot_key("site-debian12", root, "sha256:base") == key
    site = root / "playbooks" / "site.yml"
    site.write_text(site.read_text() + "\n- hosts: all\n  roles: [{role: extra}]\n")
    assert snapshot_key("site-debian12", root, "sha256:base") != key


def test_files_that_do_not_shape_the_container_leave_the_key_alone(tmp_path: Path) -> None:
    root = _copy(tmp_path, "site-debian12")
    key = snapshot_key("site-debian12", root, "sha256:base")
    tests = root / "tests" / "molecule" / "site-debian12" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_new.py").write_text("def test_x(): pass\n")
    (root / "README.md").write_text("docs change\n")
    (root / "playbooks" / "backup.yml").write_text("---\n[]\n")  # not applied by site.yml
    cache = root / "roles" / "mastodon" / "__pycache__"
    cache.mkdir()
    (cache / "x.pyc").write_bytes(b"\0")
    assert snapshot_key("site-debian12", root, "sha256:base") == key


def test_the_command_names_an_unknown_producer_or_a_missing_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["no-such", "--base-image-id", "x"]) == 2
    assert "unknown snapshot producer 'no-such'" in capsys.readouterr().err
    assert main(["site-debian12", "--root", str(tmp_path), "--base-image-id", "x"]) == 2
    assert "missing under" in capsys.readouterr().err


def test_consumers_start_from_their_producers_snapshot_and_producers_save_one() -> None:
    wiring = _snapshot_of()
    assert wiring, "no consumer in SNAPSHOT_OF"
    allowed = yaml.safe_load(
        (ROOT / "tests" / "molecule" / "shared" / "vars" / "testbed.yml").read_text()
    )["testbed_allowed_images"]
    for consumer, producer in wiring.items():
        assert producer in SHAPED_BY
        data = yaml.safe_load((ROOT / "tests" / "molecule" / consumer / "molecule.yml").read_text())
        images = {p["image"] for p in data["platforms"]}
        # Instances start from the snapshot; helpers (a backup server) may use a base image.
        assert f"instance-testbed-snapshot:{producer}" in images
        assert {i for i in images if i.startswith("instance-testbed-snapshot:")} == {
            f"instance-testbed-snapshot:{producer}"
        }
        assert f"instance-testbed-snapshot:{producer}" in allowed
        made = yaml.safe_load((ROOT / "tests" / "molecule" / producer / "molecule.yml").read_text())
        playbooks = made.get("ansible", made.get("provisioner", {}))["playbooks"]
        assert playbooks["side_effect"] == "../shared/snapshot-save.yml"
        # molecule test runs side_effect after idempotence and before verify: the default
        # sequence, or an explicit one in that order.
        sequence = made.get("scenario", {}).get("test_sequence")
        if sequence is not None:
            assert sequence.index("idempotence") < sequence.index("side_effect")
            assert sequence.index("side_effect") < sequence.index("verify")


FAKE_DOCKER = """#!/bin/bash
# docker image inspect --format FORMAT IMAGE: the base image's id, or the snapshot's key label.
image="${@: -1}"
case "$image" in
  instance-testbed-snapshot:*) [[ -n "$SNAP_LABEL" ]] || exit 1; echo "$SNAP_LABEL" ;;
  *) echo sha256:base ;;
esac
"""


def _check(tmp_path: Path, label: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SNAP_LABEL": label}
    return subprocess.run(
        ["bash", str(ROOT / "tests" / "testbed" / "snapshot.sh"), "check", "site-debian12"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_snapshot_check_accepts_only_the_current_key(tmp_path: Path) -> None:
    current = snapshot_key("site-debian12", ROOT, "sha256:base")
    assert _check(tmp_path, current).returncode == 0
    stale = _check(tmp_path, "0" * 64)
    assert stale.returncode == 1
    assert "is stale (has 000000000000, needs " in stale.stderr
    missing = _check(tmp_path, "")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
