"""Collecting a course's public interactions through the Mastodon REST API (Mastodon.py).

For each course hashtag: the hashtag timeline, page by page (Mastodon.py follows the `Link`
header), from the newest post back to `since`; for each post, its thread (`context`), so replies
without the tag count too; for each public post of a thread with favourites or boosts, who
favourited and who boosted it, page by page. Rate limits are Mastodon.py's
(`ratelimit_method="wait"`: it reads `X-RateLimit-*` and sleeps until the window resets).

Only public posts are kept, and each becomes a `Post` at once: authors, mentions, favouriters and
boosters by label (handle or pseudonym, privacy.py), status ids keyed, no display name, no text
unless asked. The run's state (what is done, where each tag's walk stands, the posts so far) is
written after every page and every thread, so an interrupted run resumes where it stopped and a
later run only fetches what is newer than the newest post it already has.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from instance_cli.analytics.privacy import Pseudonymizer, opted_in

# 100 pages of 40: the favourites or boosts of a post 4 000 people liked.
MAX_INTERACTOR_PAGES = 100


class Api(Protocol):
    """The part of Mastodon.py's client this module uses."""

    def timeline_hashtag(self, hashtag: str, **kwargs: Any) -> Any: ...
    def status_context(self, id: Any) -> Any: ...
    def status_favourited_by(self, id: Any) -> Any: ...
    def status_reblogged_by(self, id: Any) -> Any: ...
    def fetch_next(self, previous_page: Any) -> Any: ...


@dataclass
class Post:
    sid: str  # keyed status id
    created_at: str  # ISO 8601, UTC
    author: str  # label
    reply_to: str | None  # keyed id of the post it answers
    mentions: list[str]
    tags: list[str]
    favourited_by: list[str]
    reblogged_by: list[str]
    text: str | None = None


@dataclass
class State:
    """What the runs so far collected: a snapshot file (`<key>.json`, rewritten when a run
    completes) and, while a run is under way, its journal (`<key>.journal`, one JSON line per
    post, finished thread, page cursor and opted-in handle, flushed as they happen), so an
    interrupted run resumes from where it stopped without rewriting everything each time."""

    path: Path  # the snapshot file
    tags: list[str]
    posts: dict[str, Post] = field(default_factory=dict)
    threads_done: set[str] = field(default_factory=set)  # keyed ids of threads fetched
    cursors: dict[str, str] = field(default_factory=dict)  # tag -> oldest post reached (ISO)
    finished: set[str] = field(default_factory=set)  # tags whose walk is complete this run
    newest: str | None = None  # newest post of the last complete run (ISO)
    handles: dict[str, str] = field(default_factory=dict)  # pseudonym -> handle, opted-in only

    @classmethod
    def load(cls, path: Path, tags: list[str]) -> State:
        state = cls(path=path, tags=tags)
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            state.posts = {k: Post(**v) for k, v in data.get("posts", {}).items()}
            state.newest = data.get("newest")
            state.handles = dict(data.get("handles", {}))
        journal = state.journal_path
        if journal.is_file():
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # the last line of a run killed while writing it
                state._replay(entry)
        return state

    @property
    def journal_path(self) -> Path:
        return self.path.with_suffix(".journal")

    def _replay(self, entry: dict[str, Any]) -> None:
        if "post" in entry:
            post = Post(**entry["post"])
            self.posts[post.sid] = post
        elif "thread" in entry:
            self.threads_done.add(entry["thread"])
        elif "cursor" in entry:
            tag, moment = entry["cursor"]
            self.cursors[tag] = moment
        elif "finished" in entry:
            self.finished.add(entry["finished"])
        elif "handle" in entry:
            pseudonym, handle = entry["handle"]
            self.handles[pseudonym] = handle

    def _private_dir(self) -> None:
        """The state's folder is its owner's alone (0700), whatever the umask: the reports
        beside it may be served to staff (roles/analytics, analytics_publish), the state never."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)

    def record(self, *entries: dict[str, Any]) -> None:
        """Apply entries and append them to the journal (one flushed write)."""
        for entry in entries:
            self._replay(entry)
        self._private_dir()
        with self.journal_path.open("a", encoding="utf-8") as journal:
            journal.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))

    def complete(self, keep_from: str | None = None) -> None:
        """The run is complete: drop the posts older than `keep_from` (ISO; the retention),
        write the snapshot, and start the next run from its newest post."""
        if keep_from is not None:
            self.posts = {k: p for k, p in self.posts.items() if p.created_at >= keep_from}
        if self.posts:
            self.newest = max(p.created_at for p in self.posts.values())
        self._private_dir()
        data = {
            "tags": self.tags,
            "newest": self.newest,
            "handles": self.handles,
            "posts": {k: asdict(v) for k, v in sorted(self.posts.items())},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
        os.replace(tmp, self.path)
        self.journal_path.unlink(missing_ok=True)
        self.threads_done, self.cursors, self.finished = set(), {}, set()


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="seconds")
    return (
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        .astimezone(UTC)
        .isoformat(timespec="seconds")
    )


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError, IndexError):
        return getattr(obj, key, default)


@dataclass
class Collector:
    api: Api
    pseudonyms: Pseudonymizer
    state_path: Path
    tags: list[str]
    since: datetime | None = None
    keep_text: bool = False
    requests: int = 0

    def __post_init__(self) -> None:
        self.state = State.load(self.state_path, self.tags)
        self._pending: list[dict[str, Any]] = []  # journal entries of the thread under way

    # --- labels -----------------------------------------------------------------------------

    def _label(self, account: Any) -> str:
        account = dict(account)
        pseudonym = self.pseudonyms.pseudonym(account)
        if opted_in(account) and pseudonym not in self.state.handles:
            self._pending.append({"handle": [pseudonym, f"@{account['acct']}"]})
            self.state.handles[pseudonym] = f"@{account['acct']}"
        return pseudonym

    def _post(self, status: Any, favourited: list[str], reblogged: list[str]) -> Post:
        tags = sorted({str(_get(t, "name", "")).lower() for t in _get(status, "tags", []) or []})
        reply_to = _get(status, "in_reply_to_id")
        return Post(
            sid=self.pseudonyms.status(_get(status, "id")),
            created_at=_iso(_get(status, "created_at")),
            author=self._label(_get(status, "account")),
            reply_to=self.pseudonyms.status(reply_to) if reply_to is not None else None,
            mentions=sorted(
                {self.pseudonyms.pseudonym(dict(m)) for m in _get(status, "mentions", []) or []}
            ),
            tags=tags,
            favourited_by=favourited,
            reblogged_by=reblogged,
            text=str(_get(status, "content", "")) if self.keep_text else None,
        )

    # --- the API ----------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return getattr(self.api, method)(*args, **kwargs)

    def _interactors(self, status: Any, count: str, method: str) -> list[str]:
        """Who favourited or boosted the status (not asked when its count is 0), every page of
        it: Mastodon answers 40 accounts a page with a `Link` to the next, which Mastodon.py
        keeps on the page it returns. At most MAX_INTERACTOR_PAGES pages a status."""
        if not _get(status, count, 0):
            return []
        labels: set[str] = set()
        page = self._call(method, _get(status, "id"))
        for _ in range(MAX_INTERACTOR_PAGES):
            if not page:
                break
            labels.update(self._label(a) for a in page)
            if getattr(page, "_pagination_next", None) is None:
                break
            page = self._call("fetch_next", page)
        return sorted(labels)

    def _keep(self, status: Any) -> bool:
        if _get(status, "visibility") != "public":
            return False
        return self.since is None or _iso(_get(status, "created_at")) >= _iso(self.since)

    def _thread(self, status: Any) -> None:
        key = self.pseudonyms.status(_get(status, "id"))
        if key in self.state.threads_done:
            return
        context = self._call("status_context", _get(status, "id"))
        ancestors = _get(context, "ancestors") or []
        members = [*ancestors, status, *(_get(context, "descendants") or [])]
        for member in members:
            sid = self.pseudonyms.status(_get(member, "id"))
            if sid in self.state.posts or not self._keep(member):
                continue
            favourited = self._interactors(member, "favourites_count", "status_favourited_by")
            reblogged = self._interactors(member, "reblogs_count", "status_reblogged_by")
            post = self._post(member, favourited, reblogged)
            self._pending.append({"post": asdict(post)})
        self.state.record(*self._pending, {"thread": key})
        self._pending = []

    def _walk(self, tag: str) -> None:
        if tag in self.state.finished:
            return
        since = datetime.fromisoformat(self.state.newest) if self.state.newest else self.since
        cursor = self.state.cursors.get(tag)
        page = self._call(
            "timeline_hashtag",
            tag,
            limit=40,
            since_id=since,
            max_id=datetime.fromisoformat(cursor) if cursor else None,
        )
        floor = _iso(since) if since is not None else None
        while page:
            for status in page:
                # The next page's link carries only max_id (as Mastodon's does): posts at or
                # before the walk's start are the earlier run's, and end the walk.
                newer = floor is None or _iso(_get(status, "created_at")) > floor
                if newer and self._keep(status) and _get(status, "reblog") is None:
                    self._thread(status)
            oldest = min(_iso(_get(s, "created_at")) for s in page)
            self.state.record({"cursor": [tag, oldest]})
            if floor is not None and oldest <= floor:
                break
            page = self._call("fetch_next", page)
        self.state.record({"finished": tag})

    def run(self) -> State:
        """Walk every tag (resuming an interrupted walk); returns the state with every post."""
        for tag in self.tags:
            self._walk(tag.lstrip("#").lower())
        # Nothing older than the run's start stays, in the snapshot either.
        self.state.complete(keep_from=_iso(self.since) if self.since is not None else None)
        return self.state
