"""/healthz and /readyz: ready only when the hold engine's Redis (with its scripts), RQ's
Redis and the database answer; which check failed is named; readiness comes back with them.
Meanwhile fans' requests get 503 in the error envelope, and the failures are counted.

The machine's Redis and PostgreSQL are shared, so they are never stopped: the app reaches a
private redis-server and the test database through TCP proxies that the test cuts and
restores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from amphi.settings import Settings
from engine import scripts
from engine.blocks import load_block
from tests._servers import private_redis as private_redis_server
from tests.api._support import VenueFixture, assert_error, hold_body, running_api
from tests.faults._proxy import TcpProxy, tcp_proxy
from tests.payments._support import CREATE_HOLD, MY_AMPH, bearer

OK = {"redis": "ok", "inventory": "ok", "rq_redis": "ok", "database": "ok"}


def load_venue(port: int, venue: VenueFixture) -> None:
    """The venue's blocks into the private Redis, as the worker would."""
    client = redis.Redis(port=port)
    scripts.load_all(client)
    for spec in venue.specs.values():
        load_block(client, spec)
    client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[int]:
    with private_redis_server(tmp_path) as port:
        yield port


@pytest.fixture
def proxies(private_redis: int, settings: Settings,
            ) -> Iterator[tuple[TcpProxy, TcpProxy, TcpProxy]]:
    """To the hold engine's Redis (private), RQ's Redis (the suite's db 8) and the
    database."""
    db, rq = make_url(settings.database_url), urlsplit(settings.rq_url)
    with tcp_proxy("127.0.0.1", private_redis) as to_redis, \
            tcp_proxy(rq.hostname or "127.0.0.1", rq.port or 6379) as to_rq, \
            tcp_proxy(db.host or "127.0.0.1", db.port or 5432) as to_db:
        yield to_redis, to_rq, to_db


def counted(name: str) -> float:
    """A counter of this process (`name`_total), summed over its labels."""
    return sum(s.value for m in REGISTRY.collect() if m.name == name
               for s in m.samples if s.name == f"{name}_total")


def redis_errors() -> float:
    return counted("amphi_redis_errors")


def database_errors() -> float:
    return counted("amphi_database_errors")


async def ready(api: httpx.AsyncClient) -> tuple[int, dict]:
    resp = await api.get("/readyz")
    body = resp.json()
    assert body["status"] == ("ready" if resp.status_code == 200 else "not_ready"), body
    return resp.status_code, body["checks"]


@pytest.mark.slow
async def test_readiness_follows_redis_and_the_database(
        settings: Settings, venue: VenueFixture, private_redis: int,
        proxies: tuple[TcpProxy, TcpProxy]) -> None:
    to_redis, to_rq, to_db = proxies
    db = make_url(settings.database_url).set(host="127.0.0.1", port=to_db.port)
    app_settings = settings.replace(
        redis_url=f"redis://127.0.0.1:{to_redis.port}/0",
        rq_redis_url=f"redis://127.0.0.1:{to_rq.port}{urlsplit(settings.rq_url).path}",
        database_url=db.render_as_string(hide_password=False),
    )
    load_venue(private_redis, venue)
    async with running_api(app_settings) as api:
        assert (await api.get("/healthz")).json() == {"status": "ok"}
        assert await ready(api) == (200, OK)

        to_redis.cut()
        status, checks = await ready(api)
        assert status == 503 and checks["redis"] != "ok", checks
        assert "Connection" in checks["redis"], checks  # says why, without a trace
        assert {k: v for k, v in checks.items() if k not in ("redis", "inventory")} == {
            "rq_redis": "ok", "database": "ok"}
        assert (await api.get("/healthz")).status_code == 200  # alive, just not ready
        # a fan's request meanwhile: 503 in the envelope, retry soon; counted
        before = redis_errors()
        resp = await api.post(CREATE_HOLD, json=hold_body(venue.sections["Lawn"], 2))
        assert_error(resp, 503, "service_unavailable")
        assert resp.headers["retry-after"] == "1"
        assert redis_errors() == before + 1

        to_redis.restore()
        assert await ready(api) == (200, OK)

        to_rq.cut()
        status, checks = await ready(api)
        assert status == 503 and checks["rq_redis"] != "ok", checks
        assert {k: v for k, v in checks.items() if k != "rq_redis"} == {
            "redis": "ok", "inventory": "ok", "database": "ok"}
        to_rq.restore()
        assert await ready(api) == (200, OK)

        to_db.cut()
        status, checks = await ready(api)
        assert status == 503 and checks["database"] != "ok", checks
        assert {k: v for k, v in checks.items() if k != "database"} == {
            "redis": "ok", "inventory": "ok", "rq_redis": "ok"}
        # a fan's request that needs the ledger meanwhile: 503 in the envelope; counted
        before = database_errors()
        assert_error(await api.get(MY_AMPH, headers=bearer(settings, "fan-1")), 503,
                     "service_unavailable")
        assert database_errors() == before + 1
        to_db.restore()
        assert await ready(api) == (200, OK)
        assert (await api.get(MY_AMPH, headers=bearer(settings, "fan-1"))).status_code == 200

        # SCRIPT FLUSH (a failover to a replica without them, an operator): readiness
        # loads them again, so the first fan after it does not pay for it.
        direct = redis.Redis(port=private_redis)
        shas = [s.sha for s in scripts.all_scripts()]
        assert all(direct.script_exists(*shas))
        direct.script_flush()
        assert not any(direct.script_exists(*shas))
        assert await ready(api) == (200, OK)
        assert all(direct.script_exists(*shas))
        direct.close()


def test_the_proxy_really_cuts(private_redis: int) -> None:
    """The control: through the proxy, cut means unreachable and restore means back."""
    with tcp_proxy("127.0.0.1", private_redis) as proxy:
        client = redis.Redis(port=proxy.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        assert client.ping()
        proxy.cut()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        proxy.restore()
        assert client.ping()
        client.close()
