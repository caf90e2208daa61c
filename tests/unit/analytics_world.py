"""A recorded Mastodon API for the analytics tests, built by the tests themselves (nothing is
fetched): accounts and statuses in upstream's JSON shapes, served on loopback by a small HTTP
server with the endpoints the collector calls, `Link` pagination (`max_id`/`since_id` on
snowflake ids, as Mastodon's are), `X-RateLimit-*` headers, and faults on demand."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DOMAIN = "social.example.edu"


def account(
    username: str, display: str, *, remote: str | None = None, opt_in: bool = False
) -> dict[str, Any]:
    host = remote or DOMAIN
    fields = (
        [{"name": "Course analytics", "value": "<p>opt-in</p>", "verified_at": None}]
        if opt_in
        else []
    )
    return {
        "id": str(int(hashlib.sha256(f"{username}@{host}".encode()).hexdigest(), 16) % 10**8),
        "username": username,
        "acct": f"{username}@{remote}" if remote else username,
        "display_name": display,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": "2026-09-01T00:00:00.000Z",
        "note": "",
        "url": f"https://{host}/@{username}",
        "uri": f"https://{host}/users/{username}",
        "avatar": f"https://{DOMAIN}/avatars/original/missing.png",
        "avatar_static": f"https://{DOMAIN}/avatars/original/missing.png",
        "header": f"https://{DOMAIN}/headers/original/missing.png",
        "header_static": f"https://{DOMAIN}/headers/original/missing.png",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 1,
        "last_status_at": "2026-11-30",
        "emojis": [],
        "fields": fields,
    }


def snowflake(moment: datetime, sequence: int) -> str:
    """Mastodon's status ids: milliseconds since the epoch, shifted 16 bits, plus a sequence."""
    return str((int(moment.timestamp() * 1000) << 16) + sequence)


@dataclass
class World:
    statuses: list[dict[str, Any]] = field(default_factory=list)
    favourites: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reblogs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    accounts_page_size: int = 40  # favourited_by, reblogged_by (Mastodon's default)
    # Faults: the request number (1-based) that answers 500 once; the request after which the
    # rate limit is exhausted, and for how many seconds.
    fail_at: int | None = None
    exhaust_at: int | None = None
    reset_after: float = 1.2
    requests: list[str] = field(default_factory=list)
    throttled_requests: int = 0
    _reset_at: datetime | None = None

    def post(
        self,
        who: dict[str, Any],
        at: str,
        *,
        tags: tuple[str, ...] = (),
        reply_to: dict[str, Any] | None = None,
        mentions: tuple[dict[str, Any], ...] = (),
        visibility: str = "public",
        favourited_by: tuple[dict[str, Any], ...] = (),
        reblogged_by: tuple[dict[str, Any], ...] = (),
    ) -> dict[str, Any]:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        status_id = snowflake(moment, len(self.statuses))
        status = {
            "id": status_id,
            "uri": f"https://{DOMAIN}/users/{who['username']}/statuses/{status_id}",
            "url": f"https://{DOMAIN}/@{who['username']}/{status_id}",
            "created_at": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "account": who,
            "content": f"<p>a post by {who['display_name']}</p>",
            "visibility": visibility,
            "sensitive": False,
            "spoiler_text": "",
            "media_attachments": [],
            "application": None,
            "mentions": [
                {"id": m["id"], "username": m["username"], "url": m["url"], "acct": m["acct"]}
                for m in mentions
            ],
            "tags": [{"name": t, "url": f"https://{DOMAIN}/tags/{t}"} for t in tags],
            "emojis": [],
            "reblogs_count": len(reblogged_by),
            "favourites_count": len(favourited_by),
            "replies_count": 0,
            "in_reply_to_id": reply_to["id"] if reply_to else None,
            "in_reply_to_account_id": reply_to["account"]["id"] if reply_to else None,
            "reblog": None,
            "poll": None,
            "card": None,
            "language": "en",
            "edited_at": None,
        }
        self.statuses.append(status)
        self.favourites[status_id] = list(favourited_by)
        self.reblogs[status_id] = list(reblogged_by)
        if reply_to:
            reply_to["replies_count"] += 1
        return status

    # --- what the endpoints answer ----------------------------------------------------------

    def tag_timeline(
        self, tag: str, query: dict[str, str]
    ) -> tuple[list[dict[str, Any]], str | None]:
        chosen = [
            s for s in self.statuses
            if s["visibility"] == "public" and tag in [t["name"].lower() for t in s["tags"]]
            and ("max_id" not in query or int(s["id"]) < int(query["max_id"]))
            and ("since_id" not in query or int(s["id"]) > int(query["since_id"]))
        ]  # fmt: skip
        chosen.sort(key=lambda s: int(s["id"]), reverse=True)
        page = chosen[: self.page_size]
        link = None
        if page:
            base = f"/api/v1/timelines/tag/{tag}"
            extra = f"&since_id={query['since_id']}" if "since_id" in query else ""
            link = f'<http://HOST{base}?max_id={page[-1]["id"]}{extra}>; rel="next"'
        return page, link

    def accounts(
        self, status_id: str, who: list[dict[str, Any]], kind: str, query: dict[str, str]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of favourited_by or reblogged_by: newest first, paginated by the position
        of the favourite or boost (Mastodon: the Favourite's or the boost's id)."""
        numbered = [(n + 1, a) for n, a in enumerate(who)]
        chosen = [(n, a) for n, a in numbered if "max_id" not in query or n < int(query["max_id"])]
        page = sorted(chosen, key=lambda pair: pair[0], reverse=True)[: self.accounts_page_size]
        link = None
        if page:
            base = f"/api/v1/statuses/{status_id}/{kind}"
            link = f'<http://HOST{base}?max_id={page[-1][0]}>; rel="next"'
        return [a for _, a in page], link

    def context(self, status_id: str) -> dict[str, list[dict[str, Any]]]:
        by_id = {s["id"]: s for s in self.statuses}
        ancestors = []
        parent = by_id[status_id]["in_reply_to_id"]
        while parent:
            ancestors.insert(0, by_id[parent])
            parent = by_id[parent]["in_reply_to_id"]
        descendants, frontier = [], [status_id]
        while frontier:
            children = [s for s in self.statuses if s["in_reply_to_id"] in frontier]
            descendants += children
            frontier = [c["id"] for c in children]
        return {
            "ancestors": ancestors,
            "descendants": sorted(descendants, key=lambda s: int(s["id"])),
        }

    def throttled(self) -> bool:
        """True while the limit is exhausted: after request `exhaust_at`, until the reset."""
        return self._reset_at is not None and datetime.now(UTC) < self._reset_at

    def rate_headers(self) -> dict[str, str]:
        number = len(self.requests)
        now = datetime.now(UTC)
        if self.exhaust_at is not None and number == self.exhaust_at:
            self._reset_at = now + timedelta(seconds=self.reset_after)
        exhausted = self._reset_at is not None and now < self._reset_at
        reset = self._reset_at if exhausted and self._reset_at else now + timedelta(minutes=5)
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0" if exhausted else str(max(300 - number, 1)),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }


def _handler(world: World) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: Any, link: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in world.rate_headers().items():
                self.send_header(name, value)
            if link:
                self.send_header("Link", link.replace("HOST", self.headers["Host"]))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            world.requests.append(self.path)
            if world.throttled():
                # As Mastodon does once X-RateLimit-Remaining reached 0, until the reset.
                world.throttled_requests += 1
                self._send(429, {"error": "Too many requests"})
                return
            if world.fail_at is not None and len(world.requests) == world.fail_at:
                world.fail_at = None
                self._send(500, {"error": "Internal server error"})
                return
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            segments = parts.path.strip("/").split("/")
            if segments[:4] == ["api", "v1", "timelines", "tag"]:
                page, link = world.tag_timeline(segments[4].lower(), query)
                self._send(200, page, link)
            elif segments[:3] == ["api", "v1", "statuses"] and segments[4:] == ["context"]:
                self._send(200, world.context(segments[3]))
            elif segments[:3] == ["api", "v1", "statuses"] and segments[4:] == ["favourited_by"]:
                who = world.favourites.get(segments[3], [])
                self._send(200, *world.accounts(segments[3], who, segments[4], query))
            elif segments[:3] == ["api", "v1", "statuses"] and segments[4:] == ["reblogged_by"]:
                who = world.reblogs.get(segments[3], [])
                self._send(200, *world.accounts(segments[3], who, segments[4], query))
            else:
                self._send(404, {"error": "Record not found"})

    return Handler


@contextmanager
def serve(world: World) -> Iterator[str]:
    """The world on http://127.0.0.1:<free port>, for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(world))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def course_world() -> tuple[World, dict[str, dict[str, Any]]]:
    """The hand-computed course: two ISO weeks of #bio101 (see test_analytics.py)."""
    people = {
        "alice": account("alicelearns", "Alice Opted", opt_in=True),
        "bob": account("bobquietly", "Robert Quietly-Private"),
        "carol": account(
            "carolfaraway", "Carol Elsewhere-Remote", remote="other.example", opt_in=True
        ),
        "dave": account("davesilentone", "Dave Unlisted-Person"),
    }
    a, b, c, d = (people[k] for k in ("alice", "bob", "carol", "dave"))
    world = World()
    s1 = world.post(
        a, "2026-11-23T10:00:00Z", tags=("bio101",), favourited_by=(b, d), reblogged_by=(c,)
    )
    s2 = world.post(b, "2026-11-23T12:00:00Z", reply_to=s1, mentions=(a,))
    world.post(a, "2026-11-24T09:00:00Z", reply_to=s2)
    world.post(b, "2026-11-24T10:00:00Z", reply_to=s1, visibility="private")
    s4 = world.post(d, "2026-11-25T08:00:00Z", tags=("bio101",))
    world.post(c, "2026-11-28T09:00:00Z", reply_to=s4)
    s7 = world.post(d, "2026-12-01T10:00:00Z", tags=("bio101",))
    world.post(a, "2026-12-01T11:00:00Z", reply_to=s7)
    return world, people
