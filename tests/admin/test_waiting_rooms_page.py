"""The waiting rooms page: the box office opens a room, changes its pace live, pauses,
resumes, voids tokens, ends a turn and closes it, as `amphi queue` does; what it refuses
changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
import redis

from amphi.settings import Settings
from engine import waiting_room as rooms
from tests.admin._support import ORIGIN, cells, table_body
from tests.api._support import BASE, DAY, VenueFixture, assert_error, data, hold_body

PAGE, OPEN, ACT = "/admin/waiting-room", "/admin/waiting-room/open", "/admin/waiting-room/act"
EVENT_DATE = date.fromisoformat(DAY)


def _note(resp: httpx.Response) -> dict[str, str]:
    """What the redirect back to the page says: {"done": ...} or {"refused": ...}."""
    assert resp.status_code == 303, resp.text
    url = urlparse(resp.headers["location"])
    assert url.path == PAGE
    return {k: v[0] for k, v in parse_qs(url.query).items()}


def _local(at: datetime, settings: Settings) -> str:
    return at.astimezone(ZoneInfo(settings.venue_timezone)).strftime("%Y-%m-%dT%H:%M")


async def _post(admin: httpx.AsyncClient, url: str, **form: object) -> dict[str, str]:
    return _note(await admin.post(url, data={k: str(v) for k, v in form.items()},
                                  headers=ORIGIN))


async def test_the_box_office_runs_a_room(admin: httpx.AsyncClient, venue: VenueFixture,
                                          admin_settings: Settings) -> None:
    client = redis.Redis.from_url(admin_settings.redis_url)
    lawn = venue.sections["Lawn"]
    assert "No waiting room" in table_body(await admin.get(PAGE))
    data(await admin.post(f"{BASE}/holds/create/", json=hold_body(lawn, 1)), 201)

    started = datetime.now(UTC) - timedelta(minutes=1)
    opened = await _post(admin, OPEN, event_date=DAY, rate=600, turn_minutes=20,
                         on_sale_at=_local(started, admin_settings))
    assert opened["done"].startswith(f"Waiting room for {DAY} open")
    config = rooms.config_of(client, EVENT_DATE)
    assert config is not None
    assert (config.rate_per_minute, config.max_active, config.turn_seconds) == (600, 0, 1200)
    assert abs(config.on_sale_at - started) < timedelta(minutes=1)
    # holds for that date now need a turn (once the API's once-a-second read has seen it)
    await asyncio.sleep(1.1)
    assert_error(await admin.post(f"{BASE}/holds/create/", json=hold_body(lawn, 1)), 403,
                 "admission_required")
    joined = data(await admin.post("/api/queue/join/", json={"event_date": DAY}))
    assert joined["position"] == 1

    page = await admin.get(PAGE)
    row = cells(page)
    assert DAY in row and "open" in row and "600" in row and "20.0 min" in row

    # live: only the fields given change
    assert "updated" in (await _post(admin, OPEN, event_date=DAY, max_active=50))["done"]
    config = rooms.config_of(client, EVENT_DATE)
    assert config is not None and (config.rate_per_minute, config.max_active) == (600, 50)

    assert (await _post(admin, ACT, event_date=DAY, action="pause"))["done"].endswith("paused.")
    assert "paused" in cells(await admin.get(PAGE))
    assert (await _post(admin, ACT, event_date=DAY, action="resume"))["done"].endswith("open.")
    epoch = rooms.room_state(client, EVENT_DATE)
    assert epoch is not None
    assert "void" in (await _post(admin, ACT, event_date=DAY, action="revoke"))["done"]
    after = rooms.room_state(client, EVENT_DATE)
    assert after is not None and after.epoch == epoch.epoch + 1

    assert after.admitted >= 1  # fan 1's turn runs: the box office ends it
    ended = await _post(admin, ACT, event_date=DAY, action="end-turn", position=1)
    assert "ended" in ended["done"]
    assert "no turn running" in (await _post(admin, ACT, event_date=DAY, action="end-turn",
                                             position=1))["refused"]

    assert (await _post(admin, ACT, event_date=DAY, action="close"))["done"].endswith("closed.")
    await asyncio.sleep(1.1)
    data(await admin.post(f"{BASE}/holds/create/", json=hold_body(lawn, 1)), 201)
    assert "closed" in cells(await admin.get(PAGE))


async def test_what_the_page_refuses_changes_nothing(
        admin: httpx.AsyncClient, venue: VenueFixture, admin_settings: Settings) -> None:
    client = redis.Redis.from_url(admin_settings.redis_url)
    soon = _local(datetime.now(UTC) + timedelta(hours=1), admin_settings)
    later = _local(datetime.now(UTC) + timedelta(hours=2), admin_settings)
    for form, why in (
            ({"event_date": DAY}, "on-sale start"),
            ({"event_date": DAY, "on_sale_at": "tomorrow"}, "not a time"),
            ({"event_date": DAY, "on_sale_at": soon, "rate": "many"}, "whole number"),
            ({"event_date": DAY, "on_sale_at": soon, "prequeue_at": later, "rate": 60},
             "pre-queue cannot open after"),
            ({"event_date": DAY, "on_sale_at": soon, "rate": -5}, "negative"),
            ({"event_date": DAY, "on_sale_at": soon, "rate": 60, "turn_minutes": 0},
             "turn"),
            ({"event_date": "someday", "on_sale_at": soon}, "event date")):
        refused = await _post(admin, OPEN, **form)
        assert why in refused["refused"], (form, refused)
    assert not rooms.exists(client, EVENT_DATE)
    for form in ({"event_date": DAY, "action": "pause"},
                 {"event_date": DAY, "action": "explode"},
                 {"event_date": DAY, "action": "end-turn", "position": "first"}):
        assert "refused" in await _post(admin, ACT, **form), form
    assert not rooms.exists(client, EVENT_DATE)

    # from another site: refused before anything is read
    foreign = await admin.post(OPEN, data={"event_date": DAY, "on_sale_at": soon, "rate": 60},
                               headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert not rooms.exists(client, EVENT_DATE)

    # without a rate or a cap: the rate this machine carries (amphi/capacity.py)
    assert "open" in (await _post(admin, OPEN, event_date=DAY, on_sale_at=soon))["done"]
    config = rooms.config_of(client, EVENT_DATE)
    assert config is not None and config.rate_per_minute >= 60 and config.max_active == 0
