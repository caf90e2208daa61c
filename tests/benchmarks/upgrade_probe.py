#!/usr/bin/env python3
"""A request probe for upgrades, run INSIDE a test container (Python's standard library only).

    upgrade_probe.py --host social.example.test --out /run/probe.json \
        [--path /health] [--interval 0.1] [--max-requests 6000] [--max-seconds 900]

Every --interval seconds it asks nginx on 127.0.0.1:443 for --path with that Host (a new
connection each time, TLS without verification: the target is the container's own nginx), and
records when the request started, how long it took and its status or error. It stops at
--max-requests, after --max-seconds, or on SIGTERM/SIGINT, and then writes one JSON object to
--out: requests, failed, the first failures, latency percentiles, and every sample as
[seconds since the epoch, latency in seconds, status or error text]. Anything but HTTP 200
counts as failed. The path must be one nginx's cache cannot answer (`/health` is sent
`private`): tests/molecule/upgrade/tests/test_upgrade.py shows the probe failing while web is
stopped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import ssl
import time
from typing import Any

stop = False


def _stop(_signum: int, _frame: object) -> None:
    global stop
    stop = True


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def ask(host: str, path: str, context: ssl.SSLContext, timeout: float) -> str:
    connection = http.client.HTTPSConnection("127.0.0.1", 443, timeout=timeout, context=context)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "upgrade-probe"})
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException) as err:
        return f"error: {type(err).__name__}: {err}"[:200]
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--path", default="/health")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--max-requests", type=int, default=6000)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    samples: list[list[Any]] = []
    began = time.monotonic()
    next_at = began
    while not stop and len(samples) < args.max_requests:
        if time.monotonic() - began > args.max_seconds:
            break
        started_wall, started = time.time(), time.monotonic()
        outcome = ask(args.host, f"{args.path}?probe={len(samples)}", context, args.timeout)
        samples.append([round(started_wall, 3), round(time.monotonic() - started, 4), outcome])
        next_at += args.interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    latencies = [sample[1] for sample in samples]
    failures = [sample for sample in samples if sample[2] != "200"]
    result = {
        "requests": len(samples),
        "failed": len(failures),
        "first_failures": failures[:20],
        "seconds": round(time.monotonic() - began, 2),
        "p50_seconds": percentile(latencies, 0.50),
        "p99_seconds": percentile(latencies, 0.99),
        "max_seconds": max(latencies, default=0.0),
        "samples": samples,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
