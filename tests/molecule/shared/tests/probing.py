"""A request probe through a test container's nginx, from the controller: copies
tests/benchmarks/upgrade_probe.py in, runs it as a transient systemd unit, and reads its JSON
back; plus the windows in which mastodon-web restarted (from the journal), so that latency
during a switch can be told apart. Used by the upgrade scenario's tests and
tests/benchmarks/bench_upgrade.py. Imported by path: callers put this directory on sys.path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from containers import docker_exec

REPO = Path(__file__).resolve().parents[4]
PROBE = "/opt/upgrade-probe.py"


def start_probe(container: str, name: str, host: str, path: str = "/health") -> str:
    """Start probing every 100 ms (at most 9000 requests or 1200 s); returns the result file."""
    out = f"/run/{name}.json"
    subprocess.run(
        ["docker", "cp", str(REPO / "tests" / "benchmarks" / "upgrade_probe.py"),
         f"{container}:{PROBE}"],
        check=True, timeout=60,
    )  # fmt: skip
    docker_exec(
        container,
        f"rm -f {out}; systemd-run --unit {name} --collect /usr/bin/python3 {PROBE}"
        f" --host {host} --path {path} --out {out} --interval 0.1 --max-requests 9000"
        " --max-seconds 1200",
        check=True,
    )
    return out


def stop_probe(container: str, name: str, out: str) -> dict[str, Any]:
    """Stop the probe and return what it saw."""
    docker_exec(container, f"systemctl stop {name}.service", check=False)
    result = docker_exec(
        container,
        f"for i in $(seq 100); do [ -s {out} ] && cat {out} && exit 0; sleep 0.2; done; exit 1",
        check=True,
    )
    probe: dict[str, Any] = json.loads(result.stdout)
    return probe


def web_restarts(container: str, since: float) -> list[tuple[float, float]]:
    """(stopping, started) wall times of every restart of mastodon-web since `since`."""
    out = docker_exec(
        container,
        f"journalctl -u mastodon-web.service --since @{int(since)} -o json --no-pager",
        check=True,
    ).stdout
    windows: list[tuple[float, float]] = []
    stopping = None
    for line in out.splitlines():
        entry = json.loads(line)
        message = str(entry.get("MESSAGE", ""))
        when = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        if message.startswith("Stopping"):
            stopping = when
        elif message.startswith("Started") and stopping is not None:
            windows.append((stopping, when))
            stopping = None
    return windows


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def latencies_in(probe: dict[str, Any], windows: list[tuple[float, float]]) -> list[float]:
    """Latencies of the requests that started during a restart (or up to 5 s after it)."""
    return [
        float(sample[1])
        for sample in probe["samples"]
        if any(start - 0.5 <= sample[0] <= end + 5 for start, end in windows)
    ]
