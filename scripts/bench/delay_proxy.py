#!/usr/bin/env python3
"""A delaying HTTP/1.1 reverse proxy for scripts/bench-daemon (stdlib only).

Every request is held for --delay-ms, then forwarded to --upstream over a
keep-alive connection of its own (one upstream connection per client
connection, so requests never queue behind each other in the proxy), and the
response is sent back unchanged. That makes each SQS call cost at least the
delay, like a real network round trip, while staying concurrent.

GET /_proxy/stats is answered by the proxy itself (not delayed, not forwarded):
{"time", "cpu", "requests", "by_target", "connections", "max_concurrent",
"max_concurrent_by_target"} (requests being delayed or forwarded at once, by
SQS action). GET /_proxy/stats?reset-max also starts the maxima afresh.

  delay_proxy.py --upstream 127.0.0.1:4566 [--listen 127.0.0.1:0] [--delay-ms 20]
                 [--port-file FILE]
Prints "delay proxy listening on HOST:PORT" on stderr once ready (and writes
the port to --port-file). Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from emulator_client import TARGET_HEADER

# Header names as parse_headers keeps them: lower case.
TARGET_KEY = TARGET_HEADER.lower().encode()


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.by_target: dict[str, int] = {}
        self.connections = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self.concurrent_by_target: dict[str, int] = {}
        self.max_concurrent_by_target: dict[str, int] = {}

    def begin(self, target: str) -> None:
        self.requests += 1
        self.by_target[target] = self.by_target.get(target, 0) + 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        n = self.concurrent_by_target.get(target, 0) + 1
        self.concurrent_by_target[target] = n
        self.max_concurrent_by_target[target] = max(self.max_concurrent_by_target.get(target, 0), n)

    def end(self, target: str) -> None:
        self.concurrent -= 1
        self.concurrent_by_target[target] -= 1

    def reset_max(self) -> None:
        self.max_concurrent = self.concurrent
        self.max_concurrent_by_target = dict(self.concurrent_by_target)

    def as_json(self) -> bytes:
        t = os.times()
        return json.dumps(
            {
                "time": time.perf_counter(),
                "cpu": t.user + t.system,
                "requests": self.requests,
                "by_target": self.by_target,
                "connections": self.connections,
                "max_concurrent": self.max_concurrent,
                "max_concurrent_by_target": self.max_concurrent_by_target,
            }
        ).encode()


STATS = Stats()


class BadRequest(Exception):
    pass


def parse_headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_body(
    reader: asyncio.StreamReader, headers: dict[bytes, bytes], *, until_eof: bool
) -> tuple[bytes, bool]:
    """The message body, and whether it came chunked (then it is returned
    de-chunked, and the caller rewrites the framing)."""
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # Trailers, up to the empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts), True
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"])), False
    if until_eof:
        return await reader.read(), False
    return b"", False


def reframe(head: bytes, body: bytes) -> bytes:
    """Replaces chunked framing with a Content-Length."""
    lines = [
        line
        for line in head[:-4].split(b"\r\n")
        if not line.lower().startswith(b"transfer-encoding:") and not line.lower().startswith(b"content-length:")
    ]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Upstream:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes, method: bytes) -> bytes:
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if fresh or attempt == 2:
                    raise
                continue  # a kept-alive connection the server had closed: retry once
            status_line, headers = parse_headers(head)
            status = int(status_line.split()[1])
            close = headers.get(b"connection", b"").lower() == b"close"
            if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
                body, chunked = b"", False
            else:
                chunked_response = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
                no_length = b"content-length" not in headers and not chunked_response
                body, chunked = await read_body(self.reader, headers, until_eof=True)
                close = close or no_length
                if no_length:
                    head = reframe(head, body)
            if chunked:
                head = reframe(head, body)
            if close:
                self.close()
            return head + body
        raise AssertionError("unreachable")


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream_addr: tuple[str, int], delay: float
) -> None:
    STATS.connections += 1
    upstream = Upstream(*upstream_addr)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request_line, headers = parse_headers(head)
            method, _, rest = request_line.partition(b" ")
            path = rest.partition(b" ")[0]
            body, chunked = await read_body(reader, headers, until_eof=False)
            if chunked:
                head = reframe(head, body)
            client_close = headers.get(b"connection", b"").lower() == b"close"
            if method == b"GET" and path.startswith(b"/_proxy/stats"):
                payload = STATS.as_json()
                if path.endswith(b"?reset-max"):
                    STATS.reset_max()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                await writer.drain()
                if client_close:
                    return
                continue
            action = headers.get(TARGET_KEY, b"").decode(errors="replace").rpartition(".")[2]
            target = action or f"{method.decode()} {path.decode()}"
            STATS.begin(target)
            try:
                await asyncio.sleep(delay)
                try:
                    response = await upstream.exchange(head + body, method)
                except (OSError, asyncio.IncompleteReadError) as e:
                    msg = f"delay proxy: upstream failed: {e!r}".encode()
                    response = (
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: " + str(len(msg)).encode() + b"\r\n\r\n" + msg
                    )
            finally:
                STATS.end(target)
            writer.write(response)
            await writer.drain()
            if client_close:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        upstream.close()
        writer.close()


async def main_async(a: argparse.Namespace) -> None:
    up_host, _, up_port = a.upstream.rpartition(":")
    listen_host, _, listen_port = a.listen.rpartition(":")
    delay = a.delay_ms / 1000

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(reader, writer, (up_host, int(up_port)), delay)

    server = await asyncio.start_server(on_client, listen_host, int(listen_port), backlog=1024, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    print(
        f"delay proxy listening on {listen_host}:{port} -> {a.upstream}, delay {a.delay_ms:g} ms",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    forwarded = json.dumps(STATS.by_target)
    print(f"delay proxy: {STATS.requests} requests forwarded: {forwarded}", file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0: any free port)")
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--port-file")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
