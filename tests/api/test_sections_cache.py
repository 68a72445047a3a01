"""The sections endpoint under polling: a short per-process cache with single-flight, and
HTTP caching headers (Cache-Control matching the cache, ETag, If-None-Match -> 304)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import redis

from engine import scripts
from tests.api._support import BASE, DAY, assert_error, data, hold_body

STOP = "amphi-test-monitor-stop"


def _url(venue_id: str) -> str:
    return f"{BASE}/venues/{venue_id}/sections/"


def _by_name(resp: httpx.Response) -> dict[str, dict]:
    return {row["name"]: row for row in data(resp)}


@contextmanager
def redis_commands(client: redis.Redis) -> Iterator[list[list[str]]]:
    """Every command the server runs on `client`'s database while the block runs (MONITOR).
    The list is complete once the block has exited."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    seen: list[list[str]] = []
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if entry["db"] != db:
                    continue
                if STOP in entry["command"]:
                    return
                seen.append(entry["command"].split())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(5)
    client.echo("monitor-started")  # MONITOR replies OK before it streams; let it settle
    try:
        yield seen
    finally:
        client.echo(STOP)
        watcher.join(10)
        assert not watcher.is_alive(), "MONITOR did not see the stop marker"


def _availability_calls(commands: list[list[str]]) -> int:
    sha = scripts.script("availability").sha
    return sum(1 for c in commands if c[0].upper() == "EVALSHA" and c[1] == sha)


async def test_headers_etag_and_304(open_api, venue) -> None:
    async with open_api(sections_cache_seconds=1) as api:
        first = await api.get(_url(venue.id), params={"event_date": DAY})
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=1"
        assert first.headers["content-type"] == "application/json"
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
        assert len(data(first)) == 8

        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            resp = await api.get(_url(venue.id), params={"event_date": DAY},
                                 headers={"If-None-Match": header})
            assert resp.status_code == 304, header
            assert resp.content == b""
            assert resp.headers["etag"] == etag
            assert resp.headers["cache-control"] == "public, max-age=1"

        other = await api.get(_url(venue.id), params={"event_date": DAY},
                              headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200
        assert other.content == first.content


async def test_a_hold_is_reflected_after_the_ttl(open_api, venue) -> None:
    section = venue.sections["Orchestra Center"]
    async with open_api(sections_cache_seconds=2) as api:
        before = await api.get(_url(venue.id), params={"event_date": DAY})
        assert _by_name(before)["Orchestra Center"]["available_seats"] == 1500
        held_at = time.monotonic()
        data(await api.post(f"{BASE}/holds/create/", json=hold_body(section, 2)), 201)

        cached = await api.get(_url(venue.id), params={"event_date": DAY})
        assert time.monotonic() - held_at < 2, "too slow to observe the cache window"
        assert cached.content == before.content  # served from the cache, hold not yet seen
        assert cached.headers["etag"] == before.headers["etag"]

        await asyncio.sleep(2.2)
        after = await api.get(_url(venue.id), params={"event_date": DAY},
                              headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200  # the old ETag no longer matches
        row = _by_name(after)["Orchestra Center"]
        assert (row["available_seats"], row["held_seats"]) == (1498, 2)
        assert after.headers["etag"] != before.headers["etag"]


async def test_without_the_cache_a_hold_shows_at_once(open_api, venue) -> None:
    section = venue.sections["Lawn"]
    async with open_api(sections_cache_seconds=0) as api:
        before = await api.get(_url(venue.id), params={"event_date": DAY})
        assert before.headers["cache-control"] == "no-cache"
        data(await api.post(f"{BASE}/holds/create/", json=hold_body(section, 3)), 201)
        after = await api.get(_url(venue.id), params={"event_date": DAY},
                              headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert _by_name(after)["Lawn"]["held_seats"] == 3


async def test_dates_are_cached_apart(open_api, venue) -> None:
    async with open_api(sections_cache_seconds=5) as api:
        first = await api.get(_url(venue.id), params={"event_date": DAY})
        data(await api.post(f"{BASE}/holds/create/",
                            json=hold_body(venue.sections["Terrace"], 4, day="2027-06-20")), 201)
        other_day = await api.get(_url(venue.id), params={"event_date": "2027-06-20"})
        assert _by_name(other_day)["Terrace"]["held_seats"] == 4
        assert other_day.headers["etag"] != first.headers["etag"]


async def test_errors_are_not_cached(open_api, venue) -> None:
    async with open_api(sections_cache_seconds=5) as api:
        for _ in range(2):
            resp = await api.get(_url(venue.id), params={"event_date": "2027-07-04"})
            assert_error(resp, 404, "event_date_not_found")
            assert "etag" not in resp.headers


async def test_a_burst_makes_one_redis_round_trip(open_api, venue,
                                                  redis_client: redis.Redis) -> None:
    async with open_api(sections_cache_seconds=1) as api:
        with redis_commands(redis_client) as commands:
            replies = await asyncio.gather(
                *(api.get(_url(venue.id), params={"event_date": DAY}) for _ in range(40))
            )
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1
    assert _availability_calls(commands) == 8  # one pipelined call per section, once


async def test_control_without_the_cache_every_request_asks_redis(
    open_api, venue, redis_client: redis.Redis
) -> None:
    async with open_api(sections_cache_seconds=0) as api:
        with redis_commands(redis_client) as commands:
            replies = await asyncio.gather(
                *(api.get(_url(venue.id), params={"event_date": DAY}) for _ in range(40))
            )
    assert {r.status_code for r in replies} == {200}
    assert _availability_calls(commands) == 8 * 40
