"""The real server: uvicorn in a subprocess (`--factory api.app:app_from_env`, configured
only through the environment) and fans over real TCP, many at once.

One server and one ledger venue serve the module (starting uvicorn is the slow part); Redis
is flushed and every block loaded again before each test, so each starts with a fresh venue.
Fans talk through several httpx clients: one client's connection pool slows down badly
with hundreds of concurrent requests, which would measure httpx rather than the server."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine

from amphi.keys import BlockKeys
from amphi.settings import Settings
from engine import scripts
from engine.blocks import load_block, seat_map
from engine.transport.connection import sync_client
from tests._servers import amphi_env, uvicorn_server
from tests.api._support import (
    BASE,
    DAY,
    EVENT_DAYS,
    VenueFixture,
    assert_error,
    bearer,
    build_venue,
    data,
    hold_body,
    sections,
)

REPO = Path(__file__).resolve().parents[2]
CREATE = f"{BASE}/holds/create/"
STARTUP_SECONDS = 20


@pytest.fixture(scope="module")
def venue(ledger_engine: Engine, settings: Settings) -> Iterator[VenueFixture]:
    client = sync_client(settings.redis_url)
    client.flushdb()
    scripts.load_all(client)
    yield build_venue(ledger_engine, client)
    client.close()


@pytest.fixture(autouse=True)
def fresh_blocks(venue: VenueFixture, redis_client: redis.Redis) -> None:
    """Redis was just flushed (redis_client): load every block of the venue again."""
    for spec in venue.specs.values():
        assert load_block(redis_client, spec) == "created"


@pytest.fixture(scope="module")
def server(
    venue: VenueFixture, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """uvicorn serving the venue; yields its base URL."""
    env = amphi_env(settings, HOLD_TTL_SECONDS="600", HOLD_MAX_QUANTITY="8",
                    HOLD_MAX_ACTIVE_PER_OWNER="4", HOLD_RATE_LIMIT_PER_MINUTE="0",
                    SECTIONS_CACHE_SECONDS="0")  # these tests read counters right after writes
    with uvicorn_server("api.app:app_from_env", env=env,
                        log_dir=tmp_path_factory.mktemp("uvicorn")) as url:
        yield url


class Fans:
    """Several httpx clients over real TCP; a burst spreads its requests across them."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients
        self.one = clients[0]

    async def burst(self, requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
        """POST every (url, json, headers) at once; the responses in the same order."""
        go = asyncio.Event()

        async def send(i: int, url: str, body: dict, headers: dict) -> httpx.Response:
            await go.wait()
            return await self.clients[i % len(self.clients)].post(url, json=body,
                                                                  headers=headers)

        tasks = [asyncio.create_task(send(i, *r)) for i, r in enumerate(requests)]
        await asyncio.sleep(0)
        go.set()
        return await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def fans_of(url: str, clients: int = 16) -> AsyncIterator[Fans]:
    tls = ssl.create_default_context()  # one, not one a client: loading CAs is slow
    async with contextlib.AsyncExitStack() as stack:
        yield Fans([
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30,
                                                              verify=tls))
            for _ in range(clients)
        ])


def assert_conserved(rows: dict[str, dict]) -> None:
    for name, row in rows.items():
        total = row["available_seats"] + row["held_seats"] + row["sold_seats"]
        assert total == row["capacity"], (name, row)


async def test_concurrent_fans_sell_out_a_section_without_sharing_a_seat(
    server: str, venue: VenueFixture, settings: Settings, redis_client: redis.Redis
) -> None:
    section = venue.sections["Orchestra Left"]  # 800 seats: 20 rows of 40
    quantities = [1 + i % 8 for i in range(200)]  # 200 fans ask for 900 seats
    fan_ids = iter(range(100_000))
    holds: list[dict] = []

    async def round_of(fans: Fans, qtys: list[int]) -> Counter:
        """Each quantity from a distinct signed-in fan, all at once; counts the refusals."""
        requests = [(CREATE, hold_body(section, q),
                     bearer(settings.jwt_secret, f"fan-{next(fan_ids)}")) for q in qtys]
        refusals: Counter = Counter()
        for (_, body, _), resp in zip(requests, await fans.burst(requests), strict=True):
            if resp.status_code == 201:
                hold = data(resp, 201)
                assert hold["quantity"] == body["quantity"] == len(hold["seats"])
                holds.append(hold)
            else:
                refusals[assert_error(resp, 409)["code"]] += 1
        return refusals

    async with fans_of(server) as fans:
        refused = await round_of(fans, quantities)
        assert set(refused) <= {"sold_out", "not_enough_adjacent_seats"}, refused
        assert sum(refused.values()) > 0  # demand exceeded supply

        rows = await sections(fans.one, venue.id)
        assert rows["Orchestra Left"]["held_seats"] == sum(h["quantity"] for h in holds)
        assert_conserved(rows)

        # single fans take whatever seats the parties left, until none is left
        for _ in range(10):
            left = (await sections(fans.one, venue.id))["Orchestra Left"]["available_seats"]
            if left == 0:
                break
            assert set(await round_of(fans, [1] * (left + 5))) <= {"sold_out"}
        final = await sections(fans.one, venue.id)
        assert_error(await fans.one.post(CREATE, json=hold_body(section, 1),
                                         headers=bearer(settings.jwt_secret, "late-fan")),
                     409, "sold_out")
        for day in EVENT_DAYS:
            assert_conserved(await sections(fans.one, venue.id, day))

    ol = final["Orchestra Left"]
    assert (ol["available_seats"], ol["held_seats"], ol["sold_seats"]) == (0, 800, 0)
    assert sum(h["quantity"] for h in holds) == 800
    seats = [(s["row"], s["seat"]) for h in holds for s in h["seats"]]
    duplicates = [seat for seat, n in Counter(seats).items() if n > 1]
    assert not duplicates, duplicates
    assert len(set(seats)) == 800
    for hold in holds:  # each party together in one row
        assert len({s["row"] for s in hold["seats"]}) == 1
        numbers = sorted(s["seat"] for s in hold["seats"])
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    # Redis agrees: every seat of the block is held
    block = BlockKeys(venue.specs[f"{DAY}|orch-left"].block.event_date, "orch-left")
    assert seat_map(redis_client, block) == "H" * 800
    # the rest of the venue was not touched
    for name, row in final.items():
        if name != "Orchestra Left":
            assert row["held_seats"] == 0 and row["available_seats"] == row["capacity"]


async def test_concurrent_releases_release_once(
    server: str, venue: VenueFixture, settings: Settings
) -> None:
    alice = bearer(settings.jwt_secret, "alice")
    async with fans_of(server) as fans:
        before = await sections(fans.one, venue.id)
        hold = data(await fans.one.post(CREATE, json=hold_body(venue.sections["Terrace"], 4),
                                        headers=alice), 201)
        url = f"{BASE}/holds/{hold['hold_id']}/release/"
        responses = await fans.burst([(url, {}, alice)] * 40)
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 410: 39}, statuses
        for resp in responses:
            if resp.status_code == 410:
                assert_error(resp, 410, "hold_not_active")
        assert await sections(fans.one, venue.id) == before


async def test_concurrent_retries_with_one_idempotency_key_make_one_hold(
    server: str, venue: VenueFixture, settings: Settings
) -> None:
    headers = {**bearer(settings.jwt_secret, "alice"), "Idempotency-Key": "checkout-42"}
    body = hold_body(venue.sections["Mezzanine Center"], 3)
    async with fans_of(server) as fans:
        responses = await fans.burst([(CREATE, body, headers)] * 40)
        ids = {data(resp, 201)["hold_id"] for resp in responses}  # every retry: the hold
        assert len(ids) == 1
        rows = await sections(fans.one, venue.id)
        assert rows["Mezzanine Center"]["held_seats"] == 3
        assert_conserved(rows)
