"""Check availability, create / show / release a hold, idempotency, ownership and limits."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from amphi.keys import BlockKeys
from amphi.settings import DEV_JWT_SECRET
from api.auth import mint_token
from engine.blocks import load_block
from ledger import venue_seed
from tests.api._support import (
    BASE,
    DAY,
    assert_error,
    bearer,
    data,
    hold_body,
    sections,
)

CREATE = f"{BASE}/holds/create/"
CHECK = f"{BASE}/check-availability/"
SEATS_PER_ROW = {s.name: s.seats_per_row for s in venue_seed.SECTIONS}
SLUG = {s.name: s.slug for s in venue_seed.SECTIONS}


def reload_with_sold(client: redis.Redis, venue, name: str, sold: list[int] | int) -> None:
    """Make a section on DAY start with `sold` seats, as a reconcile from the ledger would."""
    spec = venue.specs[f"{DAY}|{SLUG[name]}"]
    block = BlockKeys(spec.block.event_date, spec.block.section)
    client.delete(block.meta, block.seats, block.holds, block.records, block.ended)
    assert load_block(client, spec, sold) == "created"


# -- check availability ------------------------------------------------------------------
async def test_check_availability_shape(api: httpx.AsyncClient, venue) -> None:
    body = data(await api.post(CHECK, json=hold_body(venue.sections["Orchestra Center"], 2)))
    assert body["available"] is True
    assert body["section_name"] == "Orchestra Center"
    assert body["quantity"] == 2
    assert body["price_per_ticket"] == 125
    assert body["total_price"] == 250
    # a check holds nothing
    assert (await sections(api, venue.id))["Orchestra Center"]["held_seats"] == 0


async def test_check_availability_false_when_sold_out(
    api: httpx.AsyncClient, venue, redis_client: redis.Redis
) -> None:
    reload_with_sold(redis_client, venue, "Lawn", 1497)
    lawn = venue.sections["Lawn"]
    body = data(await api.post(CHECK, json=hold_body(lawn, 4)))
    assert body["available"] is False
    assert (body["section_name"], body["quantity"], body["price_per_ticket"],
            body["total_price"]) == ("Lawn", 4, 45, 180)
    assert data(await api.post(CHECK, json=hold_body(lawn, 3)))["available"] is True
    assert_error(await api.post(CREATE, json=hold_body(lawn, 4)), 409, "sold_out")


async def test_check_availability_false_without_adjacent_seats(
    api: httpx.AsyncClient, venue, redis_client: redis.Redis
) -> None:
    # every other seat sold: 400 seats free, no two of them side by side
    reload_with_sold(redis_client, venue, "Orchestra Left", list(range(0, 800, 2)))
    left = venue.sections["Orchestra Left"]
    body = data(await api.post(CHECK, json=hold_body(left, 2)))
    assert body["available"] is False
    assert data(await api.post(CHECK, json=hold_body(left, 1)))["available"] is True
    assert data(await api.post(CHECK, json=hold_body(left, 2, allow_split=True)))["available"]
    assert_error(await api.post(CREATE, json=hold_body(left, 2)), 409,
                 "not_enough_adjacent_seats")
    assert (await sections(api, venue.id))["Orchestra Left"]["held_seats"] == 0


# -- create ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "quantity"),
    [("Orchestra Center", 2), ("Orchestra Left", 4), ("Mezzanine Left", 3), ("Terrace", 8)],
)
async def test_hold_takes_adjacent_front_row_centre_seats(
    api: httpx.AsyncClient, venue, name: str, quantity: int
) -> None:
    resp = await api.post(CREATE, json=hold_body(venue.sections[name], quantity))
    hold = data(resp, 201)
    seats = hold["seats"]
    assert len(seats) == quantity == hold["quantity"]
    assert {s["row"] for s in seats} == {"A"}
    numbers = [s["seat"] for s in seats]
    assert numbers == list(range(numbers[0], numbers[0] + quantity))
    # the party's middle is the row's middle (to half a seat)
    assert abs(numbers[0] + numbers[-1] - (SEATS_PER_ROW[name] + 1)) <= 1
    uuid.UUID(hold["hold_id"])
    assert hold["section_name"] == name
    assert hold["section_id"] == venue.sections[name]
    assert hold["event_date"] == DAY


async def test_hold_shape_price_and_expiry(api: httpx.AsyncClient, venue) -> None:
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Orchestra Center"], 2)),
                201)
    assert hold["status"] == "active"
    assert hold["price_per_ticket"] == 125
    assert hold["total_price"] == 250
    assert hold["expires_at"].endswith("Z")
    expires = datetime.fromisoformat(hold["expires_at"])
    expected = datetime.now(UTC) + timedelta(seconds=600)
    assert abs((expires - expected).total_seconds()) < 5


async def test_hold_expiry_follows_hold_ttl_seconds(open_api, venue) -> None:
    async with open_api(hold_ttl_seconds=90) as api:
        hold = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 1)), 201)
    expires = datetime.fromisoformat(hold["expires_at"])
    assert abs((expires - datetime.now(UTC)).total_seconds() - 90) < 5


async def test_lawn_hold_has_no_seats(api: httpx.AsyncClient, venue) -> None:
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 6)), 201)
    assert hold["seats"] == []
    assert hold["quantity"] == 6
    assert hold["price_per_ticket"] == 45
    assert hold["total_price"] == 270


async def test_quantity_as_digit_string_is_accepted(api: httpx.AsyncClient, venue) -> None:
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Terrace"], "2")), 201)
    assert hold["quantity"] == 2


async def test_second_hold_gets_other_seats(api: httpx.AsyncClient, venue) -> None:
    section = venue.sections["Orchestra Center"]
    first = data(await api.post(CREATE, json=hold_body(section, 2)), 201)
    second = data(await api.post(CREATE, json=hold_body(section, 2)), 201)
    seats = [(s["row"], s["seat"]) for s in first["seats"] + second["seats"]]
    assert len(set(seats)) == 4
    assert first["hold_id"] != second["hold_id"]


# -- show and release --------------------------------------------------------------------
async def test_show_and_release_a_hold(api: httpx.AsyncClient, venue) -> None:
    before = await sections(api, venue.id)
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Mezzanine Center"], 3)),
                201)
    url = f"{BASE}/holds/{hold['hold_id']}/"

    shown = data(await api.get(url))
    assert shown["hold_id"] == hold["hold_id"]
    assert shown["status"] == "active"
    assert shown["seats"] == hold["seats"]
    assert 590 <= shown["time_left_seconds"] <= 600

    released = data(await api.post(f"{url}release/"))
    assert released["hold_id"] == hold["hold_id"]
    assert released["status"] == "released"
    assert await sections(api, venue.id) == before

    again = data(await api.get(url))
    assert (again["status"], again["time_left_seconds"]) == ("released", 0)

    assert_error(await api.post(f"{url}release/"), 410, "hold_not_active")
    assert await sections(api, venue.id) == before


async def test_released_seats_are_offered_again(api: httpx.AsyncClient, venue) -> None:
    section = venue.sections["Orchestra Center"]
    first = data(await api.post(CREATE, json=hold_body(section, 2)), 201)
    data(await api.post(f"{BASE}/holds/{first['hold_id']}/release/"))
    second = data(await api.post(CREATE, json=hold_body(section, 2)), 201)
    assert second["seats"] == first["seats"]


# -- idempotency -------------------------------------------------------------------------
async def test_idempotency_key_replays_the_same_hold(api: httpx.AsyncClient, venue) -> None:
    body = hold_body(venue.sections["Orchestra Right"], 2)
    headers = {"Idempotency-Key": "order-attempt-1"}
    first = data(await api.post(CREATE, json=body, headers=headers), 201)
    replay = data(await api.post(CREATE, json=body, headers=headers), 201)
    assert replay["hold_id"] == first["hold_id"]
    assert replay["seats"] == first["seats"]
    assert (await sections(api, venue.id))["Orchestra Right"]["held_seats"] == 2

    other = data(await api.post(CREATE, json=body, headers={"Idempotency-Key": "attempt-2"}),
                 201)
    assert other["hold_id"] != first["hold_id"]
    assert (await sections(api, venue.id))["Orchestra Right"]["held_seats"] == 4


async def test_idempotency_key_with_another_body_is_refused(
    api: httpx.AsyncClient, venue
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    section = venue.sections["Orchestra Right"]
    data(await api.post(CREATE, json=hold_body(section, 2), headers=headers), 201)
    before = await sections(api, venue.id)
    assert_error(await api.post(CREATE, json=hold_body(section, 3), headers=headers), 422,
                 "idempotency_key_reused")
    assert_error(await api.post(CREATE, json={**hold_body(section, 2), "allow_split": True},
                                headers=headers), 422, "idempotency_key_reused")
    assert await sections(api, venue.id) == before


async def test_idempotency_keys_are_scoped_to_a_section_and_date(
    api: httpx.AsyncClient, venue
) -> None:
    """A hold is made in one script call on its block's slot, so a key names one request
    to one section on one date: the same key elsewhere is another request."""
    headers = {"Idempotency-Key": "k-1"}
    right = data(await api.post(CREATE, json=hold_body(venue.sections["Orchestra Right"], 2),
                                headers=headers), 201)
    lawn = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 2),
                               headers=headers), 201)
    assert lawn["hold_id"] != right["hold_id"]
    again = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 2),
                                headers=headers), 201)
    assert again["hold_id"] == lawn["hold_id"]


async def test_idempotency_keys_belong_to_their_client(
    api: httpx.AsyncClient, venue, api_settings
) -> None:
    body = hold_body(venue.sections["Terrace"], 1)
    key = {"Idempotency-Key": "same-key"}
    alice = data(await api.post(CREATE, json=body,
                                headers={**key, **bearer(api_settings.jwt_secret, "alice")}), 201)
    bob = data(await api.post(CREATE, json=body,
                              headers={**key, **bearer(api_settings.jwt_secret, "bob")}), 201)
    assert alice["hold_id"] != bob["hold_id"]


# -- ownership and auth ------------------------------------------------------------------
async def test_only_the_owner_releases_a_users_hold(
    api: httpx.AsyncClient, venue, api_settings
) -> None:
    alice = bearer(api_settings.jwt_secret, "alice")
    bob = bearer(api_settings.jwt_secret, "bob")
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 2), headers=alice),
                201)
    release = f"{BASE}/holds/{hold['hold_id']}/release/"

    assert_error(await api.post(release, headers=bob), 403, "forbidden")
    assert_error(await api.post(release), 403, "forbidden")  # a guest
    shown = data(await api.get(f"{BASE}/holds/{hold['hold_id']}/"))
    assert shown["status"] == "active"
    assert (await sections(api, venue.id))["Lawn"]["held_seats"] == 2

    assert data(await api.post(release, headers=alice))["status"] == "released"
    assert (await sections(api, venue.id))["Lawn"]["held_seats"] == 0


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer "
        + mint_token("another-secret-of-32-bytes-or-more", user_id="mallory", email="m@x.com"),
        "Bearer " + mint_token(DEV_JWT_SECRET, user_id="late", email="l@example.com",
                               ttl=timedelta(seconds=-30)),
    ],
    ids=["garbage", "empty", "basic", "wrong-secret", "expired"],
)
async def test_bad_bearer_token_is_401(
    api: httpx.AsyncClient, venue, authorization: str, api_settings
) -> None:
    assert api_settings.jwt_secret == DEV_JWT_SECRET  # the expired token's secret
    before = await sections(api, venue.id)
    headers = {"Authorization": authorization}
    assert_error(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 1),
                                headers=headers), 401, "unauthorized")
    hold = data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 1)), 201)
    assert_error(await api.post(f"{BASE}/holds/{hold['hold_id']}/release/", headers=headers),
                 401, "unauthorized")
    after = await sections(api, venue.id)
    assert after["Lawn"]["held_seats"] == before["Lawn"]["held_seats"] + 1


# -- limits ------------------------------------------------------------------------------
async def test_active_hold_limit_per_owner(
    api: httpx.AsyncClient, venue, api_settings
) -> None:
    alice = bearer(api_settings.jwt_secret, "alice")
    section = venue.sections["Orchestra Center"]
    holds = [data(await api.post(CREATE, json=hold_body(section, 1), headers=alice), 201)
             for _ in range(api_settings.hold_max_active_per_owner)]
    before = await sections(api, venue.id)

    resp = await api.post(CREATE, json=hold_body(section, 1), headers=alice)
    assert_error(resp, 429, "too_many_holds")
    assert 1 <= int(resp.headers["Retry-After"]) <= 600
    assert await sections(api, venue.id) == before

    # someone else is not limited by alice's holds
    data(await api.post(CREATE, json=hold_body(section, 1),
                        headers=bearer(api_settings.jwt_secret, "bob")), 201)
    # releasing one gives alice a slot back
    data(await api.post(f"{BASE}/holds/{holds[0]['hold_id']}/release/", headers=alice))
    data(await api.post(CREATE, json=hold_body(section, 1), headers=alice), 201)


async def test_guests_are_limited_by_address(open_api, venue) -> None:
    section = venue.sections["Terrace"]
    async with open_api(client_addr=("203.0.113.7", 4000), hold_max_active_per_owner=2) as api:
        for _ in range(2):
            data(await api.post(CREATE, json=hold_body(section, 1)), 201)
        resp = await api.post(CREATE, json=hold_body(section, 1))
        assert_error(resp, 429, "too_many_holds")
        assert "Retry-After" in resp.headers
    async with open_api(client_addr=("203.0.113.8", 4000), hold_max_active_per_owner=2) as api:
        data(await api.post(CREATE, json=hold_body(section, 1)), 201)


async def test_guests_behind_the_load_balancer_are_counted_by_their_forwarded_address(
    open_api, venue
) -> None:
    section = venue.sections["Terrace"]
    async with open_api(client_addr=("10.0.0.2", 4000), hold_max_active_per_owner=1,
                        forwarded_allow_ips="10.0.0.0/8") as api:
        fan = {"X-Forwarded-For": "203.0.113.7"}
        data(await api.post(CREATE, json=hold_body(section, 1), headers=fan), 201)
        assert_error(await api.post(CREATE, json=hold_body(section, 1), headers=fan),
                     429, "too_many_holds")
        # a made-up address in front of the balancer's changes nothing: it sees 203.0.113.7
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert_error(await api.post(CREATE, json=hold_body(section, 1), headers=spoofed),
                     429, "too_many_holds")
        other = {"X-Forwarded-For": "203.0.113.8"}
        data(await api.post(CREATE, json=hold_body(section, 1), headers=other), 201)
    async with open_api(client_addr=("192.0.2.50", 4000), hold_max_active_per_owner=1) as api:
        # a peer that is not a trusted balancer: its header is ignored, its own address counts
        data(await api.post(CREATE, json=hold_body(section, 1), headers=fan), 201)


async def test_hold_rate_limit(open_api, venue, api_settings) -> None:
    alice = bearer(api_settings.jwt_secret, "alice")
    section = venue.sections["Lawn"]
    async with open_api(hold_rate_limit_per_minute=3) as api:
        for _ in range(3):
            data(await api.post(CREATE, json=hold_body(section, 1), headers=alice), 201)
        before = await sections(api, venue.id)
        resp = await api.post(CREATE, json=hold_body(section, 1), headers=alice)
        assert_error(resp, 429, "rate_limited")
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert await sections(api, venue.id) == before
        # another user has a budget of their own
        data(await api.post(CREATE, json=hold_body(section, 1),
                            headers=bearer(api_settings.jwt_secret, "bob")), 201)


# -- expiry, Redis restarts, blocks off sale -----------------------------------------------
async def test_an_expired_hold_gives_its_seats_back(open_api, venue) -> None:
    async with open_api(hold_ttl_seconds=1) as api:
        before = await sections(api, venue.id)
        hold = data(await api.post(CREATE, json=hold_body(venue.sections["Orchestra Center"], 2)),
                    201)
        assert (await sections(api, venue.id))["Orchestra Center"]["held_seats"] == 2
        await asyncio.sleep(1.2)
        shown = data(await api.get(f"{BASE}/holds/{hold['hold_id']}/"))
        assert (shown["status"], shown["time_left_seconds"]) == ("expired", 0)
        assert await sections(api, venue.id) == before
        assert_error(await api.post(f"{BASE}/holds/{hold['hold_id']}/release/"), 410,
                     "hold_not_active")


async def test_the_api_survives_a_script_flush(
    api: httpx.AsyncClient, venue, redis_client: redis.Redis
) -> None:
    redis_client.script_flush()
    section = venue.sections["Orchestra Center"]
    assert (await sections(api, venue.id))["Orchestra Center"]["available_seats"] == 1500
    redis_client.script_flush()
    assert data(await api.post(CHECK, json=hold_body(section, 2)))["available"] is True
    redis_client.script_flush()
    hold = data(await api.post(CREATE, json=hold_body(section, 2)), 201)
    redis_client.script_flush()
    data(await api.post(f"{BASE}/holds/{hold['hold_id']}/release/"))
    assert (await sections(api, venue.id))["Orchestra Center"]["held_seats"] == 0


async def test_a_block_taken_off_sale_refuses_holds(
    api: httpx.AsyncClient, venue, redis_client: redis.Redis
) -> None:
    spec = venue.specs[f"{DAY}|{SLUG['Terrace']}"]
    assert load_block(redis_client, dataclasses.replace(spec, active=False)) == "refreshed"
    terrace = venue.sections["Terrace"]
    row = (await sections(api, venue.id))["Terrace"]
    assert row["is_on_sale"] is False
    assert row["available_seats"] == 0
    assert_error(await api.post(CHECK, json=hold_body(terrace, 2)), 409, "not_on_sale")
    assert_error(await api.post(CREATE, json=hold_body(terrace, 2)), 409, "not_on_sale")
    assert (await sections(api, venue.id))["Terrace"]["held_seats"] == 0
