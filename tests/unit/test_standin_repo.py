"""tests/standin/build-repo.sh: Mastodon-numbered tags, deterministic commits, failing tag."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "tests" / "standin" / "build-repo.sh"
TAGS = ["v4.3.0", "v4.4.0", "v4.5.0", "v4.5.1"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def _build(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD), *extra, str(out)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standin") / "repo.git"
    result = _build(out)
    assert result.returncode == 0, result.stderr
    return out


def test_release_tags_follow_mastodon_numbering(built: Path):
    assert _git(built, "tag", "--list").split() == TAGS


def test_each_tag_reports_its_own_version(built: Path):
    for tag in TAGS:
        version_rb = _git(built, "show", f"{tag}:lib/mastodon/version.rb")
        major, minor, patch = tag[1:].split(".")
        assert f"MAJOR = {major}\n" in version_rb
        assert f"MINOR = {minor}\n" in version_rb
        assert f"PATCH = {patch}\n" in version_rb


def test_migrations_arrive_with_their_release(built: Path):
    def migrations(tag: str) -> list[str]:
        files = _git(built, "ls-tree", "-r", "--name-only", tag).split()
        return [f for f in files if f.startswith(("db/migrate/", "db/post_migrate/"))]

    assert len(migrations("v4.3.0")) == 1
    assert len(migrations("v4.4.0")) == 2
    assert any(f.startswith("db/post_migrate/") for f in migrations("v4.5.0"))
    assert migrations("v4.5.1") == migrations("v4.5.0")


def test_every_tag_carries_the_stand_in_marker(built: Path):
    for tag in TAGS:
        assert "NOT Mastodon" in _git(built, "show", f"{tag}:STANDIN-NOT-MASTODON")


def test_builds_are_deterministic(built: Path, tmp_path: Path):
    again = tmp_path / "again.git"
    assert _build(again).returncode == 0
    for tag in TAGS:
        assert _git(built, "rev-parse", f"{tag}^{{commit}}") == _git(
            again, "rev-parse", f"{tag}^{{commit}}"
        )


def test_failing_tag_adds_a_migration_that_raises(tmp_path: Path):
    out = tmp_path / "failing.git"
    result = _build(out, "--with-failing-tag", "v4.5.2")
    assert result.returncode == 0, result.stderr
    assert _git(out, "tag", "--list").split() == [*TAGS, "v4.5.2"]
    files = _git(out, "ls-tree", "-r", "--name-only", "v4.5.2").split()
    failing = [f for f in files if f.endswith("_standin_failing_migration.rb")]
    assert len(failing) == 1
    assert "raise" in _git(out, "show", f"v4.5.2:{failing[0]}")


def test_refuses_to_overwrite_and_bad_tags(tmp_path: Path, built: Path):
    assert _build(built).returncode == 1
    assert _build(tmp_path / "x.git", "--with-failing-tag", "4.5.2").returncode == 2
