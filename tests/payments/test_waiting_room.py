"""The waiting room through the API: a fan joins before the on-sale, is drawn a place at the
start, polls until admitted, holds with the admission token and buys, which ends their turn;
no hold without a valid token of one's own while the room is open; a restart of the API
loses nobody's place; revocation voids every token.

The room is set in Redis as the operator's `amphi queue open` sets it (engine/waiting_room
.configure), relative to Redis' clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import redis

from amphi.settings import Settings
from amphi.waiting_room import Admission, RoomConfig, Tokens
from engine import waiting_room as rooms
from tests.api._support import DAY, assert_error, data, hold_body
from tests.payments._support import CREATE_HOLD, bearer, checkout, confirm

JOIN, STATUS = "/api/queue/join/", "/api/queue/status/"
EVENT_DATE = date.fromisoformat(DAY)


def open_room(client: redis.Redis, *, starts_in: float, rate: int = 6000, cap: int = 0,
              turn: int = 600) -> None:
    seconds, micros = client.time()
    now = datetime.fromtimestamp(seconds + micros / 1e6, UTC)
    start = now + timedelta(seconds=starts_in)
    rooms.configure(client, RoomConfig(EVENT_DATE, min(now, start) - timedelta(seconds=1),
                                       start, rate, cap, turn))


async def join(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    return data(await api.post(JOIN, json={"event_date": DAY}, headers=headers))


async def poll_until(api: httpx.AsyncClient, ticket: str, state: str,
                     seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = data(await api.get(STATUS, params={"queue_ticket": ticket}))
        if status["state"] == state:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)


async def hold_with(api: httpx.AsyncClient, section_id: str, headers: dict[str, str],
                    token: str | None) -> httpx.Response:
    extra = {"X-Admission-Token": token} if token else {}
    return await api.post(CREATE_HOLD, json=hold_body(section_id, 2),
                          headers={**headers, **extra})


async def test_a_fan_joins_waits_is_admitted_holds_and_buys(
        open_api, demo_settings: Settings, venue, redis_client: redis.Redis) -> None:
    open_room(redis_client, starts_in=2)
    fan, other = bearer(demo_settings, "fan-1"), bearer(demo_settings, "fan-2")
    lawn = venue.sections["Lawn"]
    async with open_api(demo_settings) as api:
        early = await join(api, fan)
        assert (early["state"], early["position"], early["ahead"]) == ("pre_queue", None, None)
        assert 0 <= early["estimated_wait_seconds"] <= 2 and early["on_sale_at"].endswith("Z")
        assert early["poll_after_seconds"] == 2  # the start is near: poll often
        assert (await join(api, fan))["state"] == "pre_queue"  # the same place

        refused = assert_error(await hold_with(api, lawn, fan, None), 403, "admission_required")
        assert refused["details"] == {"event_date": DAY, "join": JOIN}

        admitted = await poll_until(api, early["queue_ticket"], "admitted")
        assert admitted["position"] == 1 and admitted["ahead"] == 0
        token = admitted["admission_token"]
        assert (await join(api, fan))["position"] == 1  # joining again: the same place

        for headers, bad, why in (
                (other, token, "another fan's token"),
                (fan, "not-a-token", "garbage"),
                (fan, admitted["queue_ticket"], "a queue ticket is not an admission"),
                (fan, Tokens(demo_settings.jwt_secret).admission(Admission(
                    date(2027, 6, 20), "user:fan-1", 1, 1, int(time.time() * 1000) + 60_000)),
                 "another date's")):
            assert_error(await hold_with(api, lawn, headers, bad), 403, "admission_required"), why

        hold = data(await hold_with(api, lawn, fan, token), 201)
        order = await checkout(api, hold["hold_id"], headers=fan)
        assert data(await confirm(api, order["order_id"], headers=fan))["status"] == "COMPLETED"
        # the completed order ended the turn
        assert_error(await hold_with(api, lawn, fan, token), 403, "admission_required")
        assert (await poll_until(api, early["queue_ticket"], "turn_ended"))["position"] == 1


async def test_a_restart_of_the_api_loses_no_place(
        open_api, demo_settings: Settings, venue, redis_client: redis.Redis) -> None:
    open_room(redis_client, starts_in=-1, cap=1)  # one at a time: the others wait
    fans = [bearer(demo_settings, f"fan-{i}") for i in range(3)]
    async with open_api(demo_settings) as api:
        before = [await join(api, f) for f in fans]
    assert [s["position"] for s in before] == [1, 2, 3]
    assert [s["state"] for s in before] == ["admitted", "waiting", "waiting"]
    assert [s["ahead"] for s in before] == [0, 0, 1]
    # a cap of 1 and 10-minute turns: fan 3 waits 2 turns (20 min), and polls every 30 s
    assert [s["poll_after_seconds"] for s in before] == [30, 30, 30]
    async with open_api(demo_settings) as api:  # a new process
        for fan, seen in zip(fans, before, strict=True):
            status = data(await api.get(STATUS, params={"queue_ticket": seen["queue_ticket"]}))
            assert status["position"] == seen["position"]
            assert (await join(api, fan))["position"] == seen["position"]


async def test_revoking_voids_every_token_until_the_next_poll(
        open_api, demo_settings: Settings, venue, redis_client: redis.Redis) -> None:
    open_room(redis_client, starts_in=-1)
    fan = bearer(demo_settings, "fan-1")
    async with open_api(demo_settings) as api:
        ticket = (await join(api, fan))["queue_ticket"]
        token = (await poll_until(api, ticket, "admitted"))["admission_token"]
        rooms.revoke_all(redis_client, EVENT_DATE)
        await asyncio.sleep(1.1)  # the room's state is cached a second per process
        refused = await hold_with(api, venue.sections["Lawn"], fan, token)
        assert "revoked" in assert_error(refused, 403, "admission_required")["message"]
        fresh = (await poll_until(api, ticket, "admitted"))["admission_token"]
        assert fresh != token
        data(await hold_with(api, venue.sections["Lawn"], fan, fresh), 201)


async def test_without_an_open_room_nothing_changes(
        open_api, demo_settings: Settings, venue, redis_client: redis.Redis) -> None:
    fan = bearer(demo_settings, "fan-1")
    async with open_api(demo_settings) as api:
        assert_error(await api.post(JOIN, json={"event_date": DAY}, headers=fan), 409,
                     "queue_not_open")
        data(await hold_with(api, venue.sections["Lawn"], fan, None), 201)
        assert_error(await api.get(STATUS, params={"queue_ticket": "x"}), 422,
                     "validation_error")
        assert_error(await api.get(STATUS), 400, "invalid_request")
    open_room(redis_client, starts_in=-1)
    rooms.set_state(redis_client, EVENT_DATE, "closed")
    async with open_api(demo_settings) as api:
        data(await hold_with(api, venue.sections["Lawn"], bearer(demo_settings, "fan-2"),
                             None), 201)


async def test_a_poll_answered_ahead_of_the_router_is_answered_as_any_other(
        open_api, demo_settings: Settings, venue, redis_client: redis.Redis) -> None:
    """Polls skip Starlette's router (api/queue_polls.py), not what every answer carries;
    their errors are the routed endpoint's."""
    open_room(redis_client, starts_in=-1)
    frontend = "https://fans.example"
    settings = demo_settings.replace(cors_allowed_origins=(frontend,))
    async with open_api(settings) as api:
        ticket = (await join(api, bearer(settings, "fan-1")))["queue_ticket"]
        origin = {"Origin": frontend}
        polled = await api.get(STATUS, params={"queue_ticket": ticket}, headers=origin)
        routed = await api.get(STATUS, headers=origin)  # no ticket: the endpoint answers
        assert_error(routed, 400, "invalid_request")
        assert data(polled)["queue_ticket"] == ticket and data(polled)["state"] == "admitted"
        assert polled.headers["content-type"] == "application/json"
        assert int(polled.headers["content-length"]) == len(polled.content)
        assert set(polled.headers) == set(routed.headers)
        assert polled.headers["access-control-allow-origin"] == frontend
        assert polled.headers["x-request-id"] != routed.headers["x-request-id"]
        forged = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
        assert_error(await api.get(STATUS, params={"queue_ticket": forged}), 422,
                     "validation_error")


async def test_metrics_show_the_room(open_api, demo_settings: Settings, venue,
                                     redis_client: redis.Redis) -> None:
    open_room(redis_client, starts_in=-1, cap=1)
    async with open_api(demo_settings) as api:
        for i in range(3):
            await join(api, bearer(demo_settings, f"fan-{i}"))
        text = (await api.get("/metrics")).text
    assert f'amphi_queue_waiting{{date="{DAY}"}} 2.0' in text
    assert f'amphi_queue_active{{date="{DAY}"}} 1.0' in text
    assert f'amphi_queue_admitted_total{{date="{DAY}"}} 1.0' in text
