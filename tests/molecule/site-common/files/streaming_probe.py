"""Websocket probe the site tests run INSIDE the site container (test-only).

Opens a websocket to the streaming API through nginx (TLS on 127.0.0.1:443, SNI and Host the
instance's name, the certificate checked against the given CA file), then publishes MESSAGE on
the Redis CHANNEL the way Mastodon's web/sidekiq processes do (`PUBLISH timeline:public {...}`),
repeating only while Redis reports no subscriber yet, and prints one JSON line: how many
subscribers the publish reached and the websocket message received (or the error).

Uses Debian's python3-websockets (10.4 on Debian 12, 15 on Debian 13): `websockets.connect`
with a connected socket (`sock=`), so the name need not resolve inside the container.
Usage: streaming_probe.py SERVER_NAME CA_FILE STREAM CHANNEL MESSAGE TIMEOUT
REDISCLI_AUTH in the environment authenticates redis-cli.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import urllib.parse

import websockets


def publish(channel: str, message: str) -> int:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "--no-auth-warning", "--raw", "PUBLISH", channel, message],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return int(out.stdout.strip())


async def probe(
    server_name: str, cafile: str, stream: str, channel: str, message: str, timeout: float
) -> dict[str, object]:
    context = ssl.create_default_context(cafile=cafile)
    sock = socket.create_connection(("127.0.0.1", 443), timeout=timeout)
    uri = f"wss://{server_name}/api/v1/streaming?stream={urllib.parse.quote(stream)}"
    connection = websockets.connect(
        uri, ssl=context, sock=sock, server_hostname=server_name, open_timeout=timeout
    )
    async with connection as ws:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        receivers = publish(channel, message)
        # The streaming server subscribes to Redis once the client is connected: until it has,
        # a publish reaches nobody and is lost, so only then is it repeated.
        while receivers == 0 and loop.time() < deadline:
            await asyncio.sleep(0.5)
            receivers = publish(channel, message)
        if receivers == 0:
            return {"receivers": 0, "error": "the streaming server never subscribed"}
        received = await asyncio.wait_for(ws.recv(), max(1.0, deadline - loop.time()))
        return {"receivers": receivers, "received": json.loads(received)}


def main() -> int:
    server_name, cafile, stream, channel, message, timeout = sys.argv[1:7]
    try:
        result = asyncio.run(probe(server_name, cafile, stream, channel, message, float(timeout)))
    except Exception as error:  # the test reads the error from the output
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
