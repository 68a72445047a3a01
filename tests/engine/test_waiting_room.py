"""The waiting room in Redis (engine/waiting_room.py, lua/room_*.lua), on a single Redis and
on a Redis Cluster: fair order (the pre-queue drawn at random at the start, then first come
first served), one place per identity under concurrent joins, admission at the set rate or
up to the cap of active shoppers, turns that run out or end with an order, pause and resume.
Times are Redis' own: the rooms open relative to its clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors
from amphi.settings import Settings
from amphi.waiting_room import RoomConfig
from engine import waiting_room as rooms
from engine.transport.connection import async_client

DAY = date(2027, 6, 19)
PREQUEUE_FANS = 10_000


def redis_now(client: redis.Redis) -> datetime:
    seconds, micros = client.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, UTC)


def open_room(client: redis.Redis, *, starts_in: float, rate: int = 0, cap: int = 0,
              turn: int = 600) -> datetime:
    """A room whose pre-queue is open now and whose on-sale starts `starts_in` seconds from
    now (Redis' clock). Returns the start."""
    now = redis_now(client)
    start = now + timedelta(seconds=starts_in)
    rooms.configure(client, RoomConfig(DAY, min(now, start) - timedelta(seconds=1), start,
                                       rate, cap, turn))
    return start


async def until_started(start: datetime, client: redis.Redis) -> None:
    while redis_now(client) < start:
        await asyncio.sleep(0.05)


async def join_all(client: aredis.Redis, identities: list[str],
                   batch: int = 500) -> list[tuple[str, int, int, bool]]:
    """Each identity joins, in this order (batches concurrent within, in order across)."""
    results: list[tuple[str, int, int, bool]] = []
    for i in range(0, len(identities), batch):
        results += await asyncio.gather(*(rooms.join(client, DAY, who)
                                          for who in identities[i:i + batch]))
    return results


def spearman(xs: list[int], ys: list[int]) -> float:
    """Spearman's rank correlation of two rankings without ties (1..n each)."""
    n = len(xs)
    d2 = sum((x - y) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


@pytest.mark.slow
async def test_the_prequeue_is_drawn_at_random_then_first_come_first_served(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    start = open_room(redis_client, starts_in=30, rate=60)
    fans = [f"user:pre-{i}" for i in range(PREQUEUE_FANS)]
    joined = await join_all(aredis_client, fans)
    assert {outcome for outcome, *_ in joined} == {"pre"}
    rooms.configure(redis_client, RoomConfig(  # the operator brings the start forward
        DAY, start - timedelta(seconds=31), redis_now(redis_client), 60, 0, 600))
    await until_started(redis_now(redis_client), redis_client)

    placed = await join_all(aredis_client, fans)  # joining again: their drawn place
    positions = [number for _, number, *_ in placed]
    assert {outcome for outcome, *_ in placed} == {"pos"}
    assert sorted(positions) == list(range(1, PREQUEUE_FANS + 1))
    rho = spearman(list(range(1, PREQUEUE_FANS + 1)), positions)
    print(f"\n[pre-queue draw] {PREQUEUE_FANS} fans, Spearman rho = {rho:+.4f}")
    assert abs(rho) < 0.05

    later = [f"user:late-{i}" for i in range(200)]
    after = [await rooms.join(aredis_client, DAY, who) for who in later]  # one at a time
    assert [n for _, n, *_ in after] == list(range(PREQUEUE_FANS + 1, PREQUEUE_FANS + 201))


async def test_one_place_per_identity_under_concurrent_joins(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    open_room(redis_client, starts_in=-1, rate=60)
    fans = [f"guest:10.0.0.{i % 20}" for i in range(400)]  # 20 fans, each joining 20 times
    joined = await asyncio.gather(*(rooms.join(aredis_client, DAY, who) for who in fans))
    place: dict[str, int] = {}
    for who, (outcome, number, *_) in zip(fans, joined, strict=True):
        assert outcome == "pos"
        assert place.setdefault(who, number) == number, who
    assert sorted(place.values()) == list(range(1, 21))


async def test_admission_follows_the_rate(redis_client: redis.Redis,
                                          aredis_client: aredis.Redis) -> None:
    open_room(redis_client, starts_in=-1, rate=600)  # 10 a second
    await join_all(aredis_client, [f"user:{i}" for i in range(100)])
    first = await rooms.state(aredis_client, DAY)
    await asyncio.sleep(1.0)
    second = await rooms.state(aredis_client, DAY)
    assert first is not None and second is not None
    gained = second.admitted - first.admitted
    assert 5 <= gained <= 15, (first, second)  # 10 a second, whoever asks
    assert second.last == 100 and second.waiting == 100 - second.admitted
    assert second.active == second.admitted


async def test_a_cap_admits_as_turns_end(redis_client: redis.Redis,
                                         aredis_client: aredis.Redis) -> None:
    open_room(redis_client, starts_in=-1, cap=3, turn=5)
    joined = await join_all(aredis_client, [f"user:{i}" for i in range(6)])
    holds = [f"hold-{n}" for _, n, *_ in joined]
    room = await rooms.state(aredis_client, DAY)
    assert room is not None and (room.admitted, room.active) == (3, 3)
    # fan 1's order completes: their turn ends and the next fan comes in
    await rooms.record_hold(aredis_client, DAY, holds[0], 1)
    assert rooms.end_turns_of_holds(redis_client, [(DAY, holds[0]), (DAY, "not-a-room-hold")]
                                    ) == 1
    assert await rooms.turn_ends_ms(aredis_client, DAY, 1) is None
    room = await rooms.state(aredis_client, DAY)
    assert room is not None and (room.admitted, room.active) == (4, 3)
    # the other turns run out (5 s): the last two come in, and the abandoned turns count
    await asyncio.sleep(5.2)
    room = await rooms.state(aredis_client, DAY)
    assert room is not None and (room.admitted, room.active) == (6, 2)
    assert room.turns_expired == 3


async def test_processes_advancing_admission_at_once_never_pass_the_cap(
        redis_client: redis.Redis, aredis_client: aredis.Redis,
        settings: Settings) -> None:
    """Every API process advances admission when it reads the room: many at once (clients
    of their own, as processes are) admit no more than the cap, and each position once."""
    open_room(redis_client, starts_in=-1, cap=7)
    await join_all(aredis_client, [f"user:{i}" for i in range(100)])
    processes = [async_client(settings.redis_url, max_connections=10) for _ in range(8)]
    try:
        seen = await asyncio.gather(*(rooms.state(p, DAY) for p in processes
                                      for _ in range(25)))
    finally:
        for p in processes:
            await p.aclose()
    assert max(r.active for r in seen if r) == 7
    room = await rooms.state(aredis_client, DAY)
    assert room is not None and (room.admitted, room.active) == (7, 7)
    turns = redis_client.zrange(rooms.RoomKeys(DAY).turns, 0, -1)
    assert sorted(int(t) for t in turns) == list(range(1, 8))


async def test_pause_stops_admission_and_resume_goes_on(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    open_room(redis_client, starts_in=-1, rate=6000)
    await join_all(aredis_client, [f"user:{i}" for i in range(50)])
    await asyncio.sleep(0.2)
    rooms.set_state(redis_client, DAY, "paused")
    paused = await rooms.state(aredis_client, DAY)
    await asyncio.sleep(0.5)
    still = await rooms.state(aredis_client, DAY)
    assert paused is not None and still is not None
    assert still.state == "paused" and still.admitted == paused.admitted < 50
    assert DAY in await rooms.open_rooms(aredis_client)  # holds still need a token
    rooms.set_state(redis_client, DAY, "open")
    await asyncio.sleep(0.3)
    resumed = await rooms.state(aredis_client, DAY)
    assert resumed is not None and resumed.admitted > still.admitted
    rooms.set_state(redis_client, DAY, "closed")
    assert DAY not in await rooms.open_rooms(aredis_client)
    assert (await rooms.join(aredis_client, DAY, "user:late"))[0] == "closed"
    assert 0 < redis_client.ttl(rooms.RoomKeys(DAY).places) <= rooms.CLOSED_ROOM_TTL_SECONDS


async def test_no_room_and_a_room_not_yet_open(redis_client: redis.Redis,
                                              aredis_client: aredis.Redis) -> None:
    assert await rooms.state(aredis_client, DAY) is None
    assert (await rooms.join(aredis_client, DAY, "user:1"))[0] == "closed"
    now = redis_now(redis_client)
    rooms.configure(redis_client, RoomConfig(DAY, now + timedelta(hours=1),
                                             now + timedelta(hours=2), 60, 0, 600))
    outcome, opens_ms, *_ = await rooms.join(aredis_client, DAY, "user:1")
    assert outcome == "early" and abs(opens_ms / 1000 - (now.timestamp() + 3600)) < 1
    config = rooms.config_of(redis_client, DAY)
    assert config is not None and (config.rate_per_minute, config.turn_seconds) == (60, 600)
    assert abs(config.on_sale_at - (now + timedelta(hours=2))) < timedelta(milliseconds=1)


def test_a_room_needs_a_pace_and_a_sane_turn() -> None:
    now = datetime.now(UTC)
    with pytest.raises(errors.ValidationFailed):
        RoomConfig(DAY, now, now, 0, 0, 600)  # no rate, no cap: everyone at once
    with pytest.raises(errors.ValidationFailed):
        RoomConfig(DAY, now + timedelta(1), now, 60, 0, 600)  # pre-queue after the start
    with pytest.raises(errors.ValidationFailed):
        RoomConfig(DAY, now, now, 60, 0, 2)  # a 2-second turn
