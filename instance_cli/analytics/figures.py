"""The interaction graph and the weekly figures of a course community.

Edges point from the account that acted to the account it acted on, one edge per type with its
count as `weight`: `reply` (the author of a reply to the author of the post it answers),
`mention`, `boost` (the booster to the author) and `favourite` (likewise). Self-interactions are
left out. Weeks are ISO weeks of the post's time (UTC); an interaction counts in the week of the
post it concerns.

Per week: `posts`, `replies` (posts that answer another post), `active_participants` (accounts
that posted, replied, mentioned, boosted or favourited), `newcomers` (active for the first time
in the collected period), `replied_within_48h` (share of the week's posts that another account
answered within 48 hours), `reciprocity` (share of the week's interaction pairs that go both
ways, networkx's definition) and the `largest_component` of the week's graph (accounts, and their
share of the active participants).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import networkx as nx

from instance_cli.analytics.collect import Post, State

EDGE_TYPES = ("reply", "mention", "boost", "favourite")


def resolved_posts(state: State) -> list[Post]:
    """The posts with the handles of opted-in accounts in place of their pseudonyms."""

    def name(label: str) -> str:
        return state.handles.get(label, label)

    return sorted(
        (
            replace(
                post,
                author=name(post.author),
                mentions=[name(m) for m in post.mentions],
                favourited_by=[name(a) for a in post.favourited_by],
                reblogged_by=[name(a) for a in post.reblogged_by],
            )
            for post in state.posts.values()
        ),
        key=lambda p: (p.created_at, p.sid),
    )


def interactions(posts: Iterable[Post]) -> list[tuple[str, str, str, str]]:
    """(source, target, type, sid of the post concerned) for every interaction, in order."""
    posts = list(posts)
    author_of = {p.sid: p.author for p in posts}
    out = []
    for post in posts:
        parent = author_of.get(post.reply_to) if post.reply_to else None
        if parent is not None:
            out.append((post.author, parent, "reply", post.sid))
        out += [(post.author, m, "mention", post.sid) for m in post.mentions]
        out += [(a, post.author, "boost", post.sid) for a in post.reblogged_by]
        out += [(a, post.author, "favourite", post.sid) for a in post.favourited_by]
    return [edge for edge in out if edge[0] != edge[1]]


def interaction_graph(posts: Iterable[Post]) -> nx.MultiDiGraph[str]:
    posts = list(posts)
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph()
    for post in posts:
        graph.add_node(post.author)
    weights = Counter((s, t, kind) for s, t, kind, _ in interactions(posts))
    for (source, target, kind), weight in sorted(weights.items()):
        graph.add_edge(source, target, key=kind, type=kind, weight=weight)
    return graph


def _reciprocity(graph: nx.DiGraph[str]) -> float:
    """Share of the graph's edges whose reverse is an edge too (0 for a graph without edges)."""
    if not graph.number_of_edges():
        return 0.0
    value = nx.reciprocity(graph)
    return round(float(value), 4) if isinstance(value, float | int) else 0.0


def week_of(moment: str) -> str:
    year, week, _ = datetime.fromisoformat(moment).isocalendar()
    return f"{year}-W{week:02d}"


def weekly(posts: Iterable[Post]) -> list[dict[str, object]]:
    posts = list(posts)
    by_sid = {p.sid: p for p in posts}
    week_posts: dict[str, list[Post]] = {}
    for post in posts:
        week_posts.setdefault(week_of(post.created_at), []).append(post)
    edges = interactions(posts)
    week_edges: dict[str, list[tuple[str, str]]] = {}
    for source, target, _, sid in edges:
        week_edges.setdefault(week_of(by_sid[sid].created_at), []).append((source, target))
    # Who answered each post, and when.
    answers: dict[str, list[tuple[str, datetime]]] = {}
    for post in posts:
        if post.reply_to in by_sid:
            answers.setdefault(str(post.reply_to), []).append(
                (post.author, datetime.fromisoformat(post.created_at))
            )
    seen: set[str] = set()
    rows = []
    for week in sorted(week_posts):
        these = week_posts[week]
        active = {p.author for p in these}
        for source, target in week_edges.get(week, []):
            active |= {source, target}
        newcomers = active - seen
        seen |= active
        replied = 0
        for post in these:
            posted = datetime.fromisoformat(post.created_at)
            if any(
                who != post.author and when - posted <= timedelta(hours=48)
                for who, when in answers.get(post.sid, [])
            ):
                replied += 1
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(active)
        graph.add_edges_from(week_edges.get(week, []))
        largest = max((len(c) for c in nx.weakly_connected_components(graph)), default=0)
        rows.append(
            {
                "week": week,
                "posts": len(these),
                "replies": sum(1 for p in these if p.reply_to is not None),
                "active_participants": len(active),
                "newcomers": len(newcomers),
                "replied_within_48h": round(replied / len(these), 4),
                "reciprocity": _reciprocity(graph),
                "largest_component": largest,
                "largest_component_share": round(largest / len(active), 4) if active else 0.0,
            }
        )
    return rows
