"""Learning analytics (instance_cli/analytics) against a recorded API the tests build themselves
(analytics_world.py, served on loopback, read by Mastodon.py as a real client): pagination by
the Link header, rate-limit back-off, resuming an interrupted run, incremental runs, every
figure of a small hand-computed course, the outputs (GraphML, PNG, HTML), retention, and that
no handle, display name or profile URL of an account that did not opt in is written anywhere.

The course (#bio101): alicelearns (this server, opted in), bobquietly and davesilentone (this
server, not opted in), carolfaraway (another server: a pseudonym, even with the opt-in field).

  week 2026-W48  s1 alice #bio101 (favourited by bob and dave, boosted by carol)
                 s2 bob replies to s1 (+2 h) mentioning alice; s3 alice replies to s2 (+21 h)
                 a private reply of bob to s1 (never collected)
                 s4 dave #bio101; s5 carol replies to s4 (+73 h: not within 48 h)
  week 2026-W49  s7 dave #bio101; s8 alice replies to s7 (+1 h)
"""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from analytics_world import World, course_world, serve
from click.testing import CliRunner
from PIL import Image
from screenshots import WIDTHS, blank_reasons, screenshot

from instance_cli.analytics.privacy import Pseudonymizer
from instance_cli.analytics.run import run
from instance_cli.cli import cli
from instance_cli.errors import InstanceCliError

SECRET = b"an-analytics-secret-for-tests-0123456789"
# Screenshots of the summary page (CI artefacts).
SHOTS = Path(__file__).resolve().parents[1] / ".artifacts" / "analytics-screenshots"
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    token, secret = tmp_path / "token", tmp_path / "secret"
    token.write_text("a-read-only-token\n")
    secret.write_bytes(SECRET)
    return {"token": token, "secret": secret, "out": tmp_path / "out"}


def analyse(world: World, files: dict[str, Path], **extra: Any) -> Path:
    with serve(world) as url:
        return run(
            instance=url, token_file=files["token"], secret_file=files["secret"],
            tags=["#Bio101"], out=files["out"], since=SINCE, now=NOW, **extra,
        )  # fmt: skip


def collected(world: World) -> list[str]:
    """The requests the collector made (Mastodon.py also asks /api/v2/instance once per client)."""
    return [r for r in world.requests if not r.startswith("/api/v2/instance")]


def weekly(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((folder / "weekly.json").read_text())["weeks"]
    return rows


def label(person: dict[str, Any]) -> str:
    return Pseudonymizer(SECRET).pseudonym(person)


def test_every_figure_of_the_hand_computed_course(files: dict[str, Path]) -> None:
    world, people = course_world()
    folder = analyse(world, files)
    assert weekly(folder) == [
        {"week": "2026-W48", "posts": 5, "replies": 3, "active_participants": 4, "newcomers": 4,
         "replied_within_48h": 0.4, "reciprocity": 0.4, "largest_component": 4,
         "largest_component_share": 1.0},
        {"week": "2026-W49", "posts": 2, "replies": 1, "active_participants": 2, "newcomers": 0,
         "replied_within_48h": 0.5, "reciprocity": 0.0, "largest_component": 2,
         "largest_component_share": 1.0},
    ]  # fmt: skip
    graph = nx.read_graphml(folder / "graph.graphml", force_multigraph=True)
    alice, bob, carol, dave = "@alicelearns", *(label(people[k]) for k in ("bob", "carol", "dave"))
    edges = sorted((s, t, d["type"], d["weight"]) for s, t, d in graph.edges(data=True))
    assert edges == sorted([
        (bob, alice, "favourite", 1), (dave, alice, "favourite", 1), (carol, alice, "boost", 1),
        (bob, alice, "reply", 1), (bob, alice, "mention", 1), (alice, bob, "reply", 1),
        (carol, dave, "reply", 1), (alice, dave, "reply", 1),
    ])  # fmt: skip


def test_pagination_follows_the_link_header(files: dict[str, Path]) -> None:
    world, _ = course_world()
    world.page_size = 1  # three tagged posts: three pages and the empty one after them
    folder = analyse(world, files)
    pages = [r for r in world.requests if r.startswith("/api/v1/timelines/tag/")]
    assert len(pages) == 4, pages
    assert any("max_id=" in r for r in pages[1:])
    assert sum(int(r["posts"]) for r in weekly(folder)) == 7


def test_favourites_and_boosts_are_read_page_by_page(
    files: dict[str, Path], tmp_path: Path
) -> None:
    whole_world, _ = course_world()
    reference = analyse(whole_world, {**files, "out": tmp_path / "reference"})
    world, _ = course_world()
    world.accounts_page_size = 1  # the first post's two favourites: two pages and an empty one
    folder = analyse(world, files)
    pages = [r for r in world.requests if "/favourited_by" in r]
    assert len(pages) == 3, pages
    assert "max_id=" in pages[1]
    assert (folder / "interactions.csv").read_text() == (reference / "interactions.csv").read_text()


def test_an_exhausted_rate_limit_is_waited_out(files: dict[str, Path]) -> None:
    world, _ = course_world()
    world.exhaust_at, world.reset_after = 3, 3.0
    started = time.monotonic()
    folder = analyse(world, files)
    # Mastodon.py slept until X-RateLimit-Reset (less up to a second: it corrects for the
    # server's clock from the Date header, which has whole seconds).
    assert time.monotonic() - started >= 1.8
    assert world.throttled_requests >= 1, "the server never answered 429"
    assert sum(int(r["posts"]) for r in weekly(folder)) == 7


def test_an_interrupted_run_resumes_where_it_stopped(
    files: dict[str, Path], tmp_path: Path
) -> None:
    full_world, _ = course_world()
    reference = weekly(analyse(full_world, {**files, "out": tmp_path / "reference"}))
    world, _ = course_world()
    world.fail_at = 6  # a 500 in the middle of the first run
    with pytest.raises(InstanceCliError, match="run the same command again to resume"):
        analyse(world, files)
    done_before = len(collected(world))
    assert (files["out"] / ".state").is_dir()
    resumed = analyse(world, files)
    again = len(collected(world)) - done_before
    assert weekly(resumed) == reference
    assert again < len(collected(full_world)), "the resumed run fetched everything again"


def test_a_later_run_fetches_only_what_is_newer(files: dict[str, Path]) -> None:
    world, people = course_world()
    analyse(world, files)
    first = len(collected(world))
    world.post(people["dave"], "2026-12-01T15:00:00Z", tags=("bio101",))
    folder = analyse(world, files)
    # The new post's page, its thread, and the next page, which reaches the earlier run's posts.
    assert len(collected(world)) - first == 3, collected(world)[first:]
    assert [r["posts"] for r in weekly(folder)] == [5, 3]


def test_the_state_folder_is_the_owners_alone_whatever_the_umask(
    files: dict[str, Path],
) -> None:
    # The reports may be served to staff (analytics_publish=staff, UMask=0022); the state never.
    (files["out"] / ".state").mkdir(parents=True, mode=0o755)
    (files["out"] / ".state").chmod(0o755)
    previous = os.umask(0o022)
    try:
        world, _ = course_world()
        folder = analyse(world, files)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((files["out"] / ".state").stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "index.html").stat().st_mode) == 0o644


def _every_byte(out: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())


def test_no_one_who_did_not_opt_in_appears_anywhere(files: dict[str, Path]) -> None:
    world, people = course_world()
    analyse(world, files, keep_text=False)
    data = _every_byte(files["out"])
    assert (files["out"] / ".state").is_dir()  # the cache is searched too
    for key in ("bob", "carol", "dave"):
        person = people[key]
        for value in (person["username"], person["display_name"], person["url"], person["uri"]):
            assert value.encode() not in data, f"{key}: {value} was written"
        assert label(person).encode() in data
    # Nor any status id (it leads back to its author): only keyed ids are stored.
    for status in world.statuses:
        assert status["id"].encode() not in data
    # The opted-in account is there under its handle: the search is not vacuous.
    assert b"@alicelearns" in data
    assert b"a post by" not in data  # no text without --keep-text


def test_the_outputs_open(files: dict[str, Path]) -> None:
    world, _ = course_world()
    folder = analyse(world, files)
    assert nx.read_graphml(folder / "graph.graphml").number_of_nodes() == 4
    for picture in ("network.png", "trends.png"):
        with Image.open(folder / picture) as image:
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50, picture
    assert (folder / "network.svg").read_text().startswith("<?xml")
    html = (folder / "index.html").read_text()
    assert "<table>" in html and "2026-W48" in html and 'src="trends.png"' in html
    assert folder.name == "2026-12-02"
    index = (files["out"] / "index.html").read_text()
    assert 'href="2026-12-02/index.html"' in index


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_summary_page_shows_its_pictures_at_phone_and_desktop_width(
    files: dict[str, Path], width: str
) -> None:
    world, _ = course_world()
    folder = analyse(world, files)
    out = SHOTS / f"summary-{width}.png"
    screenshot((folder / "index.html").as_uri(), WIDTHS[width], out)
    # Text and a drawing on white: the first screen is about 97 % white when it is right.
    assert blank_reasons(out, max_share=0.995) == [], out


def test_snapshots_older_than_the_retention_are_deleted(files: dict[str, Path]) -> None:
    old = files["out"] / "2026-07-01"
    old.mkdir(parents=True)
    (old / "weekly.json").write_text('{"posts": 1, "accounts": 1}')
    world, _ = course_world()
    analyse(world, files, retention_days=120)
    assert not old.exists()
    assert (files["out"] / "2026-12-02").is_dir()


def test_a_short_secret_and_a_missing_token_are_refused(files: dict[str, Path]) -> None:
    with pytest.raises(InstanceCliError, match="analytics secret: expected at least 16 bytes"):
        Pseudonymizer(b"short")
    result = CliRunner().invoke(
        cli,
        ["analytics", "run", "--instance", "http://127.0.0.1:9", "--token-file",
         str(files["out"] / "missing"), "--secret-file", str(files["secret"]), "--tag", "bio101",
         "--out", str(files["out"])],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--token-file: cannot read" in result.output
    assert not files["out"].exists(), "nothing is written before the inputs are read"


def test_the_command_runs_end_to_end(files: dict[str, Path]) -> None:
    world, _ = course_world()
    with serve(world) as url:
        result = CliRunner().invoke(
            cli,
            ["analytics", "run", "--instance", url, "--token-file", str(files["token"]),
             "--secret-file", str(files["secret"]), "--tag", "bio101", "--since", "2026-11-01",
             "--out", str(files["out"])],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote " in result.output
