"""tests/standin/build-repo.sh: Mastodon-numbered tags across three minor series, the
migrations each release brings, deterministic commits, and the two failing tags."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standin"
BUILD = STANDIN / "build-repo.sh"
TAGS = ["v4.3.0", "v4.4.0", "v4.5.0", "v4.5.1", "v4.6.0", "v4.6.1", "v4.7.0"]
# The migration cut-off and commit date of each release, as build-repo.sh's RELEASES says.
RELEASES = {
    "v4.3.0": ("20240930000000", "2024-10-08T12:00:00Z"),
    "v4.4.0": ("20250630000000", "2025-07-08T12:00:00Z"),
    "v4.5.0": ("20251031000000", "2025-11-04T12:00:00Z"),
    "v4.5.1": ("20251031000000", "2025-11-20T12:00:00Z"),
    "v4.6.0": ("20260331000000", "2026-04-07T12:00:00Z"),
    "v4.6.1": ("20260331000000", "2026-05-05T12:00:00Z"),
    "v4.7.0": ("20260930000000", "2026-10-06T12:00:00Z"),
}
# What each minor series adds: (directory, version, class name).
NEW_IN = {
    "v4.6.0": [
        ("db/migrate", "20260301000000", "AddWordsCountToStatuses"),
        ("db/post_migrate", "20260301000100", "BackfillLocalStatusUris"),
    ],
    "v4.7.0": [
        ("db/migrate", "20260901000000", "AddStandinSearchTextToStatuses"),
        ("db/post_migrate", "20260901000100", "BackfillAccountDisplayNames"),
    ],
}
FAILING_PRE = [("db/migrate", "20261102000000", "StandinFailingMigration")]
FAILING_POST = [
    ("db/migrate", "20261101000000", "AddStandinLanguageToStatuses"),
    ("db/post_migrate", "20261101000100", "BackfillStandinLanguageOfStatuses"),
    ("db/post_migrate", "20261101000200", "StandinFailingPostMigration"),
]
RECORD = "INSERT INTO standin_data_migrations (version, rows_changed, ran_at)"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def _build(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD), *extra, str(out)], capture_output=True, text=True, timeout=180, check=False
    )


def _migrations(repo: Path, ref: str) -> list[str]:
    files = _git(repo, "ls-tree", "-r", "--name-only", ref).split()
    return sorted(
        f for f in files if f.startswith(("db/migrate/", "db/post_migrate/")) and f.endswith(".rb")
    )


def _version(path: str) -> str:
    return Path(path).name.split("_", 1)[0]


def _commit(repo: Path, ref: str) -> str:
    return _git(repo, "rev-parse", f"{ref}^{{commit}}").strip()


def _class_of(repo: Path, ref: str, path: str) -> str:
    source = _git(repo, "show", f"{ref}:{path}")
    match = re.search(r"^class (\w+) < ActiveRecord::Migration\[6\.1\]$", source, re.M)
    assert match, f"{ref}:{path} defines no migration class"
    return match.group(1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standin") / "repo.git"
    result = _build(out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def with_failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standin-failing") / "repo.git"
    result = _build(out, "--with-failing-post-tag", "v4.7.98", "--with-failing-tag", "v4.7.99")
    assert result.returncode == 0, result.stderr
    return out


def test_release_tags_follow_mastodon_numbering(built: Path):
    assert _git(built, "tag", "--list").split() == TAGS
    assert {tag.rsplit(".", 1)[0] for tag in TAGS} >= {"v4.5", "v4.6", "v4.7"}


def test_the_script_and_the_tests_agree_on_cut_offs_and_dates():
    script = BUILD.read_text(encoding="utf-8")
    listed = re.findall(r'^  "(v\d+\.\d+\.\d+) (\d{14}) (\S+)"$', script, re.M)
    assert {tag: (cutoff, date) for tag, cutoff, date in listed} == RELEASES


def test_each_tag_reports_its_own_version(built: Path):
    for tag in TAGS:
        version_rb = _git(built, "show", f"{tag}:lib/mastodon/version.rb")
        major, minor, patch = tag[1:].split(".")
        assert f"MAJOR = {major}\n" in version_rb
        assert f"MINOR = {minor}\n" in version_rb
        assert f"PATCH = {patch}\n" in version_rb


def test_each_tag_holds_exactly_the_migrations_up_to_its_cut_off(built: Path):
    source = sorted(
        p.relative_to(STANDIN / "app").as_posix()
        for d in ("db/migrate", "db/post_migrate")
        for p in (STANDIN / "app" / d).glob("*.rb")
    )
    for tag, (cutoff, _) in RELEASES.items():
        assert _migrations(built, tag) == [m for m in source if _version(m) <= cutoff], tag


def test_migrations_arrive_with_their_release(built: Path):
    # the core tables, the interaction tables and the sessions
    assert len(_migrations(built, "v4.3.0")) == 3
    assert len(_migrations(built, "v4.4.0")) == 4
    assert any(f.startswith("db/post_migrate/") for f in _migrations(built, "v4.5.0"))
    assert _migrations(built, "v4.5.1") == _migrations(built, "v4.5.0")
    assert _migrations(built, "v4.6.1") == _migrations(built, "v4.6.0")
    previous = set(_migrations(built, "v4.5.1"))
    for tag in ("v4.6.0", "v4.7.0"):
        current = set(_migrations(built, tag))
        added = sorted(current - previous)
        assert previous <= current
        assert [(str(Path(m).parent), _version(m), _class_of(built, tag, m)) for m in added] == (
            NEW_IN[tag]
        )
        previous = current


def test_each_new_series_has_pre_and_post_migrations_that_record_their_data_change(built: Path):
    for tag, expected in NEW_IN.items():
        for directory, version, _ in expected:
            (path,) = [m for m in _migrations(built, tag) if _version(m) == version]
            assert path.startswith(f"{directory}/")
            source = _git(built, "show", f"{tag}:{path}")
            assert "connection.update(" in source, f"{path} changes no rows"
            assert RECORD in source, f"{path} does not record itself"
    words = _git(built, "show", "v4.6.0:db/migrate/20260301000000_add_words_count_to_statuses.rb")
    assert "create_table :standin_data_migrations, id: :string, primary_key: :version" in words
    assert "t.integer :rows_changed, null: false" in words
    assert "t.datetime :ran_at, null: false" in words
    assert "add_column :statuses, :words_count, :integer\n" in words
    search = _git(
        built, "show", "v4.7.0:db/migrate/20260901000000_add_standin_search_text_to_statuses.rb"
    )
    assert "add_column :statuses, :standin_search_text, :text\n" in search
    assert "lower(text)" in search


def test_every_tag_carries_the_stand_in_marker(built: Path):
    for tag in TAGS:
        assert "NOT Mastodon" in _git(built, "show", f"{tag}:STANDIN-NOT-MASTODON")


def test_builds_are_deterministic(built: Path, with_failing: Path, tmp_path: Path):
    again = tmp_path / "again.git"
    assert _build(again).returncode == 0
    for tag in TAGS:
        assert _commit(built, tag) == _commit(again, tag)
        assert _commit(built, tag) == _commit(with_failing, tag), "failing tags moved a release"
    failing_again = tmp_path / "failing-again.git"
    result = _build(
        failing_again, "--with-failing-post-tag", "v4.7.98", "--with-failing-tag", "v4.7.99"
    )
    assert result.returncode == 0, result.stderr
    for tag in ("v4.7.98", "v4.7.99"):
        assert _commit(with_failing, tag) == _commit(failing_again, tag)
    for tag, (_, date) in RELEASES.items():
        committed = _git(built, "log", "-1", "--format=%aI %cI", tag).split()
        assert {datetime.fromisoformat(d) for d in committed} == {datetime.fromisoformat(date)}


def test_release_commits_form_one_line_on_main(built: Path):
    assert _git(built, "rev-list", "--reverse", "main").split() == [_commit(built, t) for t in TAGS]
    assert _git(built, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_failing_tags_are_siblings_on_top_of_the_last_release(with_failing: Path):
    assert _git(with_failing, "tag", "--list").split() == [*TAGS, "v4.7.98", "v4.7.99"]
    assert _commit(with_failing, "main") == _commit(with_failing, "v4.7.0")
    last = set(_migrations(with_failing, "v4.7.0"))
    for tag, expected in (("v4.7.98", FAILING_POST), ("v4.7.99", FAILING_PRE)):
        assert _git(with_failing, "rev-parse", f"{tag}^{{commit}}^").strip() == _commit(
            with_failing, "v4.7.0"
        )
        current = set(_migrations(with_failing, tag))
        assert last <= current
        added = sorted(current - last)
        assert [
            (str(Path(m).parent), _version(m), _class_of(with_failing, tag, m)) for m in added
        ] == expected
        assert all(_version(m) > max(map(_version, last)) for m in added)
        version_rb = _git(with_failing, "show", f"{tag}:lib/mastodon/version.rb")
        assert f"PATCH = {tag.rsplit('.', 1)[1]}\n" in version_rb


def test_the_failing_pre_deployment_migration_changes_the_schema_then_raises(with_failing: Path):
    (path,) = [m for m in _migrations(with_failing, "v4.7.99") if "standin_failing" in m]
    source = _git(with_failing, "show", f"v4.7.99:{path}")
    assert path.startswith("db/migrate/")
    assert source.index("add_column :accounts, :standin_half_done") < source.index("raise ")
    # No disable_ddl_transaction!: the change is inside the migration's transaction.
    assert "disable_ddl_transaction" not in source


def test_the_failing_post_tag_runs_good_migrations_before_the_one_that_raises(
    with_failing: Path,
):
    files = {_version(m): m for m in _migrations(with_failing, "v4.7.98")}
    pre = _git(with_failing, "show", f"v4.7.98:{files['20261101000000']}")
    good = _git(with_failing, "show", f"v4.7.98:{files['20261101000100']}")
    bad = _git(with_failing, "show", f"v4.7.98:{files['20261101000200']}")
    assert "add_column :statuses, :standin_language, :string\n" in pre
    assert RECORD in pre
    assert "raise" not in pre
    assert "connection.update(" in good
    assert RECORD in good
    assert "raise ActiveRecord::IrreversibleMigration" in good  # only in down
    assert bad.index("connection.update(") < bad.index("raise '")
    assert "disable_ddl_transaction" not in bad


@pytest.mark.parametrize(
    ("option", "tag", "overlay"),
    [
        ("--with-failing-tag", "v4.7.99", "pre"),
        ("--with-failing-post-tag", "v4.7.98", "post"),
        ("--with-breaking-tag", "v4.7.97", "breaking"),
    ],
)
def test_each_failing_option_works_alone(tmp_path: Path, option: str, tag: str, overlay: str):
    out = tmp_path / "alone.git"
    result = _build(out, option, tag)
    assert result.returncode == 0, result.stderr
    assert _git(out, "tag", "--list").split() == [*TAGS, tag]
    added = sorted(set(_migrations(out, tag)) - set(_migrations(out, "v4.7.0")))
    expected = sorted(
        p.relative_to(STANDIN / "failing" / overlay).as_posix()
        for p in (STANDIN / "failing" / overlay).glob("db/**/*.rb")
    )
    assert added == expected


def test_a_clone_sees_the_failing_tags(with_failing: Path, tmp_path: Path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(with_failing), str(clone)], check=True, timeout=60)
    assert _git(clone, "tag", "--list").split() == [*TAGS, "v4.7.98", "v4.7.99"]
    _git(clone, "checkout", "-q", "v4.7.98")
    assert (clone / "db/post_migrate/20261101000200_standin_failing_post_migration.rb").is_file()


def test_help_names_every_option():
    result = subprocess.run(
        [str(BUILD), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    for option in (
        "--debian",
        "--with-failing-tag",
        "--with-failing-post-tag",
        "--with-breaking-tag",
        "OUT_DIR",
    ):
        assert option in result.stdout
    assert "StandinFailingPostMigration" in result.stdout


def test_refuses_to_overwrite_and_bad_tags(tmp_path: Path, built: Path):
    assert _build(built).returncode == 1
    for args in (
        ["--with-failing-tag", "4.7.99"],
        ["--with-failing-post-tag", "v4.7"],
        ["--with-failing-post-tag", "v4.7.98-rc1"],
        ["--with-failing-tag", "v4.7.0"],
        ["--with-failing-post-tag", "v4.5.1"],
        ["--with-failing-tag", "v4.7.99", "--with-failing-post-tag", "v4.7.99"],
        ["--no-such-option"],
    ):
        result = _build(tmp_path / "x.git", *args)
        assert result.returncode == 2, args
        assert not (tmp_path / "x.git").exists()


def test_the_breaking_tag_migrates_fine_but_its_web_never_starts(tmp_path: Path):
    out = tmp_path / "breaking.git"
    assert _build(out, "--with-breaking-tag", "v4.7.97").returncode == 0
    assert _git(out, "rev-parse", "v4.7.97^") == _git(out, "rev-parse", "v4.7.0^{commit}")
    puma = _git(out, "show", "v4.7.97:config/puma.rb")
    assert puma.strip().splitlines()[-1].startswith("raise ")
    rename = _git(out, "show", "v4.7.97:db/migrate/20261103000000_standin_rename_job_runs.rb")
    assert "rename_table :standin_job_runs" in rename and "raise" not in rename
