"""Outages are quiet and clear: while Redis or the database is gone, every fan's request gets
503 and is counted, and the process writes one warning when it goes and one when it is
back, with no traceback; identical error lines are held back; a client that hangs up is
not a server error.

The machine's Redis and PostgreSQL are shared, so they are never stopped: the app reaches a
private redis-server and the test database through TCP proxies that the test cuts and
restores (tests/faults/_proxy.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from amphi.logs import RepeatLimit
from amphi.settings import Settings
from api.app import create_app
from ledger import venue_seed
from tests._servers import private_redis as private_redis_server
from tests.api._support import (
    DAY,
    VenueFixture,
    assert_error,
    hold_body,
    running_api,
)
from tests.engine._support import assert_block_ok
from tests.faults._proxy import TcpProxy, tcp_proxy
from tests.faults._support import assert_reconcile_clean
from tests.ops.test_readyz import database_errors, load_venue, redis_errors
from tests.payments._support import CREATE_HOLD, MY_AMPH, bearer

FANS = 300


@pytest.fixture
def proxied(tmp_path: Path, settings: Settings) -> Iterator[tuple[Settings, TcpProxy, TcpProxy]]:
    """Settings whose hold-engine Redis (a private one) and database are behind proxies."""
    with private_redis_server(tmp_path) as port, \
            tcp_proxy("127.0.0.1", port) as to_redis:
        db = make_url(settings.database_url)
        with tcp_proxy(db.host or "127.0.0.1", db.port or 5432) as to_db:
            yield settings.replace(
                redis_url=f"redis://127.0.0.1:{to_redis.port}/0",
                rq_redis_url=settings.rq_url,
                database_url=db.set(host="127.0.0.1", port=to_db.port)
                .render_as_string(hide_password=False),
            ), to_redis, to_db


def capture(caplog: pytest.LogCaptureFixture) -> None:
    """The app's start-up sets the process's log handler (amphi.logs.configure): pytest's
    capture is added back beside it."""
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.INFO)


def outage_lines(caplog: pytest.LogCaptureFixture, dependency: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "dependency", None) == dependency]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    traced = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert not traced, traced


async def until(predicate, seconds: float = 10.0) -> float:
    """Waits for `predicate()`; returns how long it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
async def test_a_redis_outage_is_two_lines_and_a_count(
        proxied: tuple[Settings, TcpProxy, TcpProxy], venue: VenueFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, to_redis, _ = proxied
    load_venue(to_redis.target[1], venue)
    async with running_api(settings) as api:
        capture(caplog)
        to_redis.cut()
        before = redis_errors()
        body = hold_body(venue.sections["Lawn"], 2)
        answers = await asyncio.gather(*(api.post(CREATE_HOLD, json=body) for _ in range(FANS)))
        for resp in answers:
            assert_error(resp, 503, "service_unavailable")
        assert redis_errors() == before + FANS

        lines = outage_lines(caplog, "redis")
        assert [(r.levelname, r.getMessage()) for r in lines] == [
            ("WARNING", "redis unreachable")], lines
        assert "Connection" in lines[0].error  # says why, in a line
        no_tracebacks(caplog)

        to_redis.restore()
        took = await until(lambda: len(outage_lines(caplog, "redis")) == 2)
        back = outage_lines(caplog, "redis")[1]
        assert back.getMessage() == "redis reachable again"
        assert back.failed_requests == FANS and back.down_seconds > 0
        assert took < 3  # probed every second
        print(f"\n[redis cut] {FANS} holds answered 503; back {took:.1f} s after the restore")
        assert (await api.post(CREATE_HOLD, json=body)).status_code == 201
    no_tracebacks(caplog)
    await asyncio.to_thread(assert_reconcile_clean, settings)


@pytest.mark.slow
async def test_a_database_outage_is_two_lines_and_a_count(
        proxied: tuple[Settings, TcpProxy, TcpProxy], venue: VenueFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, to_redis, to_db = proxied
    load_venue(to_redis.target[1], venue)
    fan = bearer(settings, "fan-1")
    async with running_api(settings) as api:
        capture(caplog)
        to_db.cut()
        before = database_errors()
        answers = await asyncio.gather(*(api.get(MY_AMPH, headers=fan) for _ in range(50)))
        for resp in answers:
            assert_error(resp, 503, "service_unavailable")
        assert database_errors() == before + 50
        assert [r.getMessage() for r in outage_lines(caplog, "database")] == [
            "database unreachable"]
        no_tracebacks(caplog)

        to_db.restore()
        took = await until(lambda: len(outage_lines(caplog, "database")) == 2)
        print(f"\n[database cut] 50 reads answered 503; back {took:.1f} s after the restore")
        assert outage_lines(caplog, "database")[1].failed_requests == 50
        assert (await api.get(MY_AMPH, headers=fan)).status_code == 200
    no_tracebacks(caplog)
    await asyncio.to_thread(assert_reconcile_clean, settings)


def test_identical_error_lines_are_held_back() -> None:
    now = [0.0]
    limit = RepeatLimit(window=10, clock=lambda: now[0])

    def record(msg: str, level: int = logging.ERROR,
               exc: type[BaseException] | None = None) -> logging.LogRecord:
        info = (exc, exc(), None) if exc else None
        return logging.LogRecord("api.errors", level, __file__, 1, msg, None, info)

    assert limit.filter(record("unhandled error", exc=KeyError))
    held = [limit.filter(record("unhandled error", exc=KeyError)) for _ in range(999)]
    assert not any(held)
    # another message, or another exception, is another line
    assert limit.filter(record("unhandled error", exc=ValueError))
    assert limit.filter(record("payment provider unavailable", logging.WARNING))
    assert all(limit.filter(record("request", logging.INFO)) for _ in range(5))  # info: all

    now[0] = 10.5  # the window is over: the next one passes, saying what was held back
    passed = record("unhandled error", exc=KeyError)
    assert limit.filter(passed) and passed.repeated == 999
    again = record("unhandled error", exc=KeyError)
    now[0] = 30
    assert limit.filter(again) and not hasattr(again, "repeated")


async def test_a_client_that_hangs_up_is_not_a_server_error(
        settings: Settings, venue: VenueFixture, caplog: pytest.LogCaptureFixture) -> None:
    """The client disconnects while its body is being read."""
    app = create_app(settings)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": CREATE_HOLD, "raw_path":
             CREATE_HOLD.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"host", b"amphi.test")],
             "client": ("127.0.0.1", 50000), "server": ("amphi.test", 80)}
    async with app.router.lifespan_context(app):
        capture(caplog)
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
    assert any(r.getMessage() == "client disconnected" for r in caplog.records)



@pytest.mark.slow
async def test_a_slow_redis_trips_the_reply_timeout(
        proxied: tuple[Settings, TcpProxy, TcpProxy], venue: VenueFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    """Redis answers, but 1.5 s late, and the engine waits 0.5 s for a reply (socket_timeout
    in REDIS_URL): fans get 503 within about that time instead of hanging, no 500; once
    Redis is quick again holds succeed, and the block's counters still add up (holds that
    Redis made while their fans were told 503 are real holds; they expire)."""
    settings, to_redis, _ = proxied
    port = to_redis.target[1]
    load_venue(port, venue)
    settings = settings.replace(redis_url=f"{settings.redis_url}?socket_timeout=0.5")
    body = hold_body(venue.sections["Lawn"], 1)
    async with running_api(settings) as api:
        capture(caplog)
        assert (await api.post(CREATE_HOLD, json=body)).status_code == 201
        to_redis.delay = 1.5
        started = time.monotonic()
        answers = await asyncio.gather(*(
            api.post(CREATE_HOLD, json=body, headers={"X-Forwarded-For": f"10.9.0.{i + 1}"})
            for i in range(20)))
        slow_for = time.monotonic() - started
        assert {r.status_code for r in answers} == {503}, [r.text for r in answers]
        assert slow_for < 2.5  # the reply timeout, not the slow server, set the pace
        assert [r.getMessage() for r in outage_lines(caplog, "redis")] == ["redis unreachable"]
        assert "Timeout" in outage_lines(caplog, "redis")[0].error

        to_redis.delay = 0
        took = await until(lambda: len(outage_lines(caplog, "redis")) == 2)
        print(f"\n[redis slow] 20 holds answered 503 in {slow_for:.1f} s; "
              f"back {took:.1f} s after Redis was quick again")
        assert (await api.post(CREATE_HOLD, json=body,
                               headers={"X-Forwarded-For": "10.9.1.1"})).status_code == 201
    no_tracebacks(caplog)
    client = redis.Redis(port=port)
    lawn = next(s for s in venue_seed.SECTIONS if s.name == "Lawn")
    assert_block_ok(client, venue.specs[f"{DAY}|{lawn.slug}"].block)
    client.close()
    await asyncio.to_thread(assert_reconcile_clean, settings)
