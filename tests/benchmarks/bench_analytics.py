#!/usr/bin/env python3
"""Benchmark: learning analytics over 50 000 posts from recorded API responses.

Builds a course of N posts (default 50 000: 10 000 threads of five public posts by 600
accounts over ten weeks, each root tagged, with mentions, favourites and boosts) as the API
would answer it (Mastodon's JSON shapes, timeline pages of 40), feeds the recorded responses to
the collector in process (no network), then writes the run's folder (graph, figures, plots,
HTML). Prints JSON: seconds for collecting and for the report, peak memory (tracemalloc) and the
process's peak RSS. Goal: the weekly job within 120 s and 1 GiB. Usage: bench_analytics.py [N]
"""

from __future__ import annotations

import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from analytics_world import account, snowflake

from instance_cli.analytics.collect import Collector
from instance_cli.analytics.figures import resolved_posts
from instance_cli.analytics.privacy import Pseudonymizer
from instance_cli.analytics.report import write_run

GOAL_SECONDS = 120.0
GOAL_BYTES = 1 << 30
PAGE = 40


class Page(list[Any]):
    """A timeline page with the cursor of the next one, like Mastodon.py's paginated lists."""

    def __init__(self, items: list[Any], next_index: int | None) -> None:
        super().__init__(items)
        self._pagination_next = next_index


class Recorded:
    """The collector's API calls answered from recorded responses."""

    def __init__(
        self,
        roots: list[dict[str, Any]],
        threads: dict[str, list[dict[str, Any]]],
        favourites: dict[str, list[Any]],
        reblogs: dict[str, list[Any]],
    ) -> None:
        self.roots, self.threads = roots, threads
        self.favourites, self.reblogs = favourites, reblogs

    def _page(self, start: int) -> Page:
        end = start + PAGE
        return Page(self.roots[start:end], end if end < len(self.roots) else None)

    def timeline_hashtag(self, hashtag: str, **kwargs: Any) -> Page:
        return self._page(0)

    def fetch_next(self, previous_page: Any) -> Any:
        cursor = getattr(previous_page, "_pagination_next", None)
        return self._page(cursor) if cursor is not None else None

    def status_context(self, id: Any) -> dict[str, Any]:
        thread = self.threads[str(id)]
        return {"ancestors": [], "descendants": thread[1:]}

    def status_favourited_by(self, id: Any) -> list[Any]:
        return self.favourites.get(str(id), [])

    def status_reblogged_by(self, id: Any) -> list[Any]:
        return self.reblogs.get(str(id), [])


def course(posts: int, seed: int = 7) -> Recorded:
    rng = random.Random(seed)  # noqa: S311  (a reproducible course, not a secret)
    people = [account(f"learner{i:04d}", f"Learner {i}", opt_in=i % 5 == 0) for i in range(600)]
    start = datetime(2026, 9, 7, tzinfo=UTC)
    roots, threads, favourites, reblogs = [], {}, {}, {}
    number = 0
    for _ in range(posts // 5):
        moment = start + timedelta(minutes=rng.randrange(10 * 7 * 24 * 60))
        thread: list[dict[str, Any]] = []
        for depth in range(5):
            who = rng.choice(people)
            status_id = snowflake(moment + timedelta(minutes=30 * depth), number)
            number += 1
            parent = thread[-1] if thread else None
            mentioned = [rng.choice(people)] if rng.random() < 0.3 else []
            status = {
                "id": status_id, "created_at": (moment + timedelta(minutes=30 * depth)).isoformat(),
                "account": who, "visibility": "public", "content": "<p>…</p>",
                "in_reply_to_id": parent["id"] if parent else None,
                "mentions": [{"id": m["id"], "username": m["username"], "acct": m["acct"],
                              "url": m["url"]} for m in mentioned],
                "tags": [{"name": "course"}] if not parent else [],
                "favourites_count": rng.randrange(3), "reblogs_count": rng.randrange(2),
                "reblog": None,
            }  # fmt: skip
            favourites[status_id] = rng.sample(people, status["favourites_count"])
            reblogs[status_id] = rng.sample(people, status["reblogs_count"])
            thread.append(status)
        roots.append(thread[0])
        threads[thread[0]["id"]] = thread
    roots.sort(key=lambda s: int(s["id"]), reverse=True)
    return Recorded(roots, threads, favourites, reblogs)


def main() -> int:
    posts = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    api = course(posts)
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        started = time.perf_counter()
        collector = Collector(
            api=api, pseudonyms=Pseudonymizer(b"benchmark-secret-0123456789abcdef"),
            state_path=Path(tmp) / ".state" / "bench.json", tags=["course"],
        )  # fmt: skip
        # The state is written after every thread (resumability); count that cost too.
        state = collector.run()
        collected = time.perf_counter() - started
        started = time.perf_counter()
        folder = write_run(resolved_posts(state), Path(tmp), ["course"])
        reported = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        files = sorted(p.name for p in folder.iterdir())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    total = collected + reported
    print(json.dumps({
        "benchmark": "analytics",
        "posts": len(state.posts),
        "api_calls": collector.requests,
        "collect_seconds": round(collected, 2),
        "report_seconds": round(reported, 2),
        "total_seconds": round(total, 2),
        "peak_traced_bytes": peak,
        "peak_rss_bytes": rss,
        "files": files,
        "goal_seconds": GOAL_SECONDS,
        "goal_bytes": GOAL_BYTES,
        "goal_met": total <= GOAL_SECONDS and rss <= GOAL_BYTES,
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
