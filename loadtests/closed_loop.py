"""A second load generator, to cross-check wrk's slowest answers: N keep-alive connections,
each sending GET requests back to back for a while (asyncio on uvloop), counting the
answers slower than a threshold and when they came.

    .venv/bin/python -m loadtests.closed_loop http://127.0.0.1:8000/healthz --connections 1000

wrk (one thread, 1,000 connections) reported a few hundred answers beyond 2 s in 8 s from
the ceilings' no-op endpoint, whose p99 is under 100 ms; this client, against the same
server, saw none beyond 1 s (see the README's HTTP benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from urllib.parse import urlsplit

import uvloop


async def run(url: str, connections: int, seconds: float, slow: float) -> None:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    started = time.perf_counter()
    answers, slow_ones = 0, []

    async def connection() -> None:
        nonlocal answers
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        end = started + seconds
        while time.perf_counter() < end:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            took = time.perf_counter() - sent
            answers += 1
            if took > slow:
                slow_ones.append((round(sent - started, 2), round(took, 2)))
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    print(f"{answers:,} answers in {elapsed:.1f} s ({answers / elapsed:,.0f}/s); "
          f"{len(slow_ones)} slower than {slow:g} s"
          + (f", first at {slow_ones[0][0]} s after the start" if slow_ones else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("url")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--slow", type=float, default=1.0, help="seconds an answer may take")
    args = p.parse_args()
    uvloop.run(run(args.url, args.connections, args.seconds, args.slow))


if __name__ == "__main__":
    main()
