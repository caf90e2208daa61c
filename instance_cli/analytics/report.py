"""The dated output folder of one analytics run, and the index across runs.

`<out>/<YYYY-MM-DD>/` (the run's UTC date) holds:

  graph.graphml       the interaction graph (opens in Gephi; edge attributes `type`, `weight`)
  interactions.csv    one row per interaction: source, target, type, week
  weekly.csv, .json   the weekly figures (figures.py)
  network.png, .svg   the graph, drawn (at most the 300 most connected accounts)
  trends.png, .svg    the weekly figures over time
  index.html          a summary that shows them

`<out>/index.html` lists every run. Run folders older than the retention period (default one
term, 120 days) are deleted with everything in them.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import networkx as nx
from jinja2 import Environment, PackageLoader, select_autoescape

from instance_cli.analytics.collect import Post
from instance_cli.analytics.figures import (
    EDGE_TYPES,
    interaction_graph,
    interactions,
    week_of,
    weekly,
)

RUN_NAME = "%Y-%m-%d"
_ENV = Environment(
    loader=PackageLoader("instance_cli", "templates/analytics"),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)
FIGURE_KEYS = (
    "posts",
    "replies",
    "active_participants",
    "newcomers",
    "replied_within_48h",
    "reciprocity",
    "largest_component_share",
)


# The picture shows at most this many accounts, the most connected ones (networkx's spring
# layout needs SciPy from 500 nodes on, and a larger picture is unreadable); graph.graphml has all.
DRAWN_NODES = 300


def _draw_network(graph: nx.MultiDiGraph[str], folder: Path) -> None:
    simple: nx.DiGraph[str] = nx.DiGraph(graph)
    if simple.number_of_nodes() > DRAWN_NODES:
        degree = dict(simple.degree())
        kept = sorted(simple, key=lambda n: (-degree[n], n))[:DRAWN_NODES]
        simple = nx.DiGraph(simple.subgraph(kept))
    figure, axes = plt.subplots(figsize=(8, 8))
    if simple.number_of_nodes():
        layout = nx.spring_layout(simple, seed=1)
        degree = dict(simple.degree())
        nx.draw_networkx_nodes(
            simple, layout, ax=axes, node_size=[60 + 40 * degree[n] for n in simple],
            node_color="#5b6ee1",
        )  # fmt: skip
        # Arrow heads are one patch per edge: only for a picture with few edges.
        if simple.number_of_edges() <= 500:
            nx.draw_networkx_edges(simple, layout, ax=axes, alpha=0.4, arrows=True)
        else:
            nx.draw_networkx_edges(simple, layout, ax=axes, alpha=0.3, arrows=False)
        nx.draw_networkx_labels(simple, layout, ax=axes, font_size=7)
    shown = "" if graph.number_of_nodes() <= DRAWN_NODES else f", the {DRAWN_NODES} most connected"
    axes.set_title(f"Who interacts with whom (replies, mentions, boosts, favourites{shown})")
    axes.set_axis_off()
    for suffix in ("png", "svg"):
        figure.savefig(folder / f"network.{suffix}", dpi=120)
    plt.close(figure)


def _draw_trends(rows: list[dict[str, object]], folder: Path) -> None:
    weeks = [str(r["week"]) for r in rows]
    figure, (counts, shares) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for key in ("posts", "replies", "active_participants", "newcomers"):
        values = [float(str(r[key])) for r in rows]
        counts.plot(weeks, values, marker="o", label=key.replace("_", " "))
    counts.set_ylabel("per week")
    counts.legend()
    for key in ("replied_within_48h", "reciprocity", "largest_component_share"):
        values = [float(str(r[key])) for r in rows]
        shares.plot(weeks, values, marker="o", label=key.replace("_", " "))
    shares.set_ylabel("share")
    shares.set_ylim(0, 1.05)
    shares.legend()
    shares.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    for suffix in ("png", "svg"):
        figure.savefig(folder / f"trends.{suffix}", dpi=120)
    plt.close(figure)


def write_run(posts: list[Post], out: Path, tags: list[str], now: datetime | None = None) -> Path:
    """Write one run's folder under `out`; returns it."""
    moment = now or datetime.now(UTC)
    folder = out / moment.strftime(RUN_NAME)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    graph = interaction_graph(posts)
    nx.write_graphml(graph, folder / "graph.graphml")
    by_sid = {p.sid: p for p in posts}
    with (folder / "interactions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "target", "type", "week"])
        for source, target, kind, sid in interactions(posts):
            writer.writerow([source, target, kind, week_of(by_sid[sid].created_at)])
    rows = weekly(posts)
    with (folder / "weekly.csv").open("w", newline="", encoding="utf-8") as handle:
        table = csv.DictWriter(handle, fieldnames=["week", *FIGURE_KEYS, "largest_component"])
        table.writeheader()
        table.writerows(rows)
    summary = {
        "generated_at": moment.isoformat(timespec="seconds"),
        "tags": tags,
        "posts": len(posts),
        "accounts": graph.number_of_nodes(),
        "interactions": {
            kind: sum(1 for *_, k in graph.edges(keys=True) if k == kind) for kind in EDGE_TYPES
        },
        "weeks": rows,
    }
    (folder / "weekly.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _draw_network(graph, folder)
    _draw_trends(rows, folder)
    html = _ENV.get_template("run.html.j2").render(summary=summary, keys=FIGURE_KEYS)
    (folder / "index.html").write_text(html, encoding="utf-8")
    return folder


def runs(out: Path) -> list[Path]:
    found = []
    for child in out.iterdir() if out.is_dir() else []:
        try:
            datetime.strptime(child.name, RUN_NAME)
        except ValueError:
            continue
        if child.is_dir():
            found.append(child)
    return sorted(found)


def prune(out: Path, retention_days: int, today: date | None = None) -> list[Path]:
    """Delete the run folders older than the retention period; returns what was deleted."""
    limit = (today or datetime.now(UTC).date()) - timedelta(days=retention_days)
    gone = []
    for folder in runs(out):
        if datetime.strptime(folder.name, RUN_NAME).date() < limit:
            shutil.rmtree(folder)
            gone.append(folder)
    return gone


def write_index(out: Path, tags: list[str]) -> Path:
    entries = []
    for folder in reversed(runs(out)):
        data = json.loads((folder / "weekly.json").read_text(encoding="utf-8"))
        entries.append({"name": folder.name, "posts": data["posts"], "accounts": data["accounts"]})
    page = out / "index.html"
    page.write_text(_ENV.get_template("index.html.j2").render(runs=entries, tags=tags), "utf-8")
    return page
