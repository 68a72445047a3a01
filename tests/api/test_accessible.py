"""Accessible seating through the API: a section's wheelchair spaces (each with its
companion seat) are held back from best available and picks, given to fans who ask with
`"accessible": n`, counted apart in the sections, and join general sale once the rest of
the date is sold out or the box office releases them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import pytest_asyncio
import redis
from sqlalchemy import Engine, update

from amphi.keys import BlockKeys
from engine import sales
from engine.blocks import load_block
from ledger.db import session_factory
from ledger.inventory import block_specs
from ledger.models import SeatBlock
from tests.api._support import (
    BASE,
    DAY,
    VenueFixture,
    assert_error,
    data,
    hold_body,
    sections,
    set_accessible_seats,
)
from tests.api.conftest import ApiOpener
from tests.api.test_holds import reload_with_sold

CREATE = f"{BASE}/holds/create/"
CHECK = f"{BASE}/check-availability/"
SECTION = "Mezzanine Left"  # 20 rows (A-T) of 30 seats
# Given in this order: row S before row T; in row T, T1 and T30 are as far off centre and
# the leftmost goes first.
LAYOUT = "T1+T2, T30+T29, S15+S16"
S15, S16, T1, T2, T29, T30 = 554, 555, 570, 571, 598, 599
PAIR_SEATS = {S15, S16, T1, T2, T29, T30}


def seats(*names: str) -> list[dict]:
    return [{"row": n[0], "seat": int(n[1:])} for n in names]


@pytest.fixture
def acc_venue(venue: VenueFixture, ledger_engine: Engine,
              redis_client: redis.Redis) -> VenueFixture:
    return set_accessible_seats(ledger_engine, redis_client, venue, SECTION, LAYOUT)


@pytest_asyncio.fixture
async def acc_api(acc_venue: VenueFixture, open_api: ApiOpener) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api() as client:
        yield client


def body(venue: VenueFixture, **choice) -> dict:
    return {"section_id": venue.sections[SECTION], "event_date": DAY, **choice}


def block_of(venue: VenueFixture) -> BlockKeys:
    return venue.specs[f"{DAY}|mezz-left"].block


async def seat_rows(api: httpx.AsyncClient, venue: VenueFixture) -> dict[str, str]:
    url = f"{BASE}/venues/{venue.id}/sections/{venue.sections[SECTION]}/seats/"
    seat_map = data(await api.get(url, params={"event_date": DAY}))
    return {r["row"]: r["seats"] for r in seat_map["rows"]}


async def test_sections_and_the_seat_map_show_the_spaces_apart(acc_api: httpx.AsyncClient,
                                                               acc_venue: VenueFixture) -> None:
    rows = await sections(acc_api, acc_venue.id)
    ml = rows[SECTION]
    assert (ml["accessible_spaces"], ml["accessible_available"]) == (3, 3)
    # the withheld seats are not a general fan's to hold
    assert (ml["available_seats"], ml["held_seats"], ml["sold_seats"]) == (594, 0, 0)
    assert all((r["accessible_spaces"], r["accessible_available"]) == (0, 0)
               for name, r in rows.items() if name != SECTION)
    url = f"{BASE}/venues/{acc_venue.id}/sections/{acc_venue.sections[SECTION]}/seats/"
    seat_map = data(await acc_api.get(url, params={"event_date": DAY}))
    assert seat_map["legend"] == {"0": "free", "H": "held", "S": "sold", "W": "wheelchair",
                                  "C": "companion"}
    assert (seat_map["free"], seat_map["wheelchair"], seat_map["companion"]) == (594, 3, 3)
    by_row = {r["row"]: r["seats"] for r in seat_map["rows"]}
    assert by_row["S"][14:16] == "WC"
    assert by_row["T"] == "WC" + "0" * 26 + "CW"


async def test_a_fan_who_asks_gets_a_space_and_its_companion(acc_api: httpx.AsyncClient,
                                                             acc_venue: VenueFixture) -> None:
    first = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1)), 201)
    assert first["seats"] == seats("S15", "S16")
    assert (first["quantity"], first["accessible"], first["total_price"]) == (2, 1, 150)
    alone = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1,
                                                      companions=False)), 201)
    assert alone["seats"] == seats("T1") and alone["quantity"] == 1
    ml = (await sections(acc_api, acc_venue.id))[SECTION]
    assert (ml["accessible_available"], ml["held_seats"], ml["available_seats"]) == (1, 3, 594)
    # a general hold has no "accessible" key: the contract's hold JSON is unchanged
    general = data(await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 2)),
                   201)
    assert "accessible" not in general

    # released: the space and its companion are withheld again, not free for anyone
    await acc_api.post(f"{BASE}/holds/{first['hold_id']}/release/")
    assert (await seat_rows(acc_api, acc_venue))["S"][14:16] == "WC"
    assert (await sections(acc_api, acc_venue.id))[SECTION]["accessible_available"] == 2


async def test_best_available_and_picks_never_take_them(acc_api: httpx.AsyncClient,
                                                        acc_venue: VenueFixture,
                                                        redis_client: redis.Redis) -> None:
    # the whole section sold but four seats of row T and the pairs
    free = {579, 580, 581, 582} | PAIR_SEATS
    reload_with_sold(redis_client, acc_venue, SECTION, [i for i in range(600) if i not in free])
    sold_out = await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 5,
                                                         allow_split=True))
    assert assert_error(sold_out, 409, "sold_out")["details"]["available"] == 4
    check = data(await acc_api.post(CHECK, json=hold_body(acc_venue.sections[SECTION], 5)))
    assert (check["available"], check["available_seats"]) == (False, 4)
    four = data(await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 4)), 201)
    assert four["seats"] == seats("T10", "T11", "T12", "T13")
    picked = await acc_api.post(CREATE, json=body(acc_venue, seats=seats("S15", "T2")))
    assert assert_error(picked, 409, "seats_unavailable")["details"]["unavailable"] == \
        seats("S15", "T2")


async def test_they_join_general_sale_once_the_rest_is_sold(acc_api: httpx.AsyncClient,
                                                            acc_venue: VenueFixture,
                                                            redis_client: redis.Redis) -> None:
    free = {579, 580} | PAIR_SEATS
    reload_with_sold(redis_client, acc_venue, SECTION, [i for i in range(600) if i not in free])
    space = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1)), 201)
    last = data(await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 2)), 201)
    block = block_of(acc_venue)
    # the general seats held are not sold yet: still withheld
    assert (await seat_rows(acc_api, acc_venue))["T"][:2] == "WC"
    sale = sales.sell(redis_client, block, order_id="ORD-1", hold_id=last["hold_id"],
                      quantity=0, preferred=[])
    assert sale is not None and sale.seats == [579, 580]

    rows = await seat_rows(acc_api, acc_venue)
    assert rows["T"] == "00" + "S" * 26 + "00"  # T1, T2, T29, T30 on general sale
    assert rows["S"][14:16] == "HH"  # the accessible hold keeps its seats
    ml = (await sections(acc_api, acc_venue.id))[SECTION]
    assert (ml["available_seats"], ml["accessible_available"]) == (4, 2)
    general = data(await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 2)),
                   201)
    assert general["seats"] == seats("T1", "T2")
    # the accessible hold ends: its seats are on general sale now, not withheld
    await acc_api.post(f"{BASE}/holds/{space['hold_id']}/release/")
    assert (await seat_rows(acc_api, acc_venue))["S"][14:16] == "00"


async def test_the_box_office_releases_them_for_one_date(acc_api: httpx.AsyncClient,
                                                         acc_venue: VenueFixture,
                                                         ledger_engine: Engine,
                                                         redis_client: redis.Redis) -> None:
    held = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1)), 201)
    with session_factory(ledger_engine).begin() as session:
        block = session.scalars(
            update(SeatBlock).where(SeatBlock.event_date == date.fromisoformat(DAY))
            .values(accessible_released=True).returning(SeatBlock.id)).all()
        assert block
        specs = [s for s in block_specs(session) if s.block.section == "mezz-left"]
    for spec in specs:  # as the admin's change refreshes the loaded blocks
        assert load_block(redis_client, spec) == "refreshed"
    rows = await seat_rows(acc_api, acc_venue)
    assert "W" not in "".join(rows.values()) and "C" not in "".join(rows.values())
    ml = (await sections(acc_api, acc_venue.id))[SECTION]
    assert (ml["available_seats"], ml["held_seats"], ml["accessible_available"]) == (598, 2, 2)
    # the hold made before keeps its seats; ended, they stay on general sale
    await acc_api.post(f"{BASE}/holds/{held['hold_id']}/release/")
    assert (await seat_rows(acc_api, acc_venue))["S"][14:16] == "00"
    # the other dates still withhold theirs
    other = await sections(acc_api, acc_venue.id, "2027-06-20")
    assert other[SECTION]["available_seats"] == 594


async def test_when_every_space_is_taken(acc_api: httpx.AsyncClient,
                                         acc_venue: VenueFixture) -> None:
    all_three = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=3)), 201)
    assert {s["row"] + str(s["seat"]) for s in all_three["seats"]} == \
        {"S15", "S16", "T1", "T2", "T29", "T30"}
    refused = await acc_api.post(CREATE, json=body(acc_venue, accessible=1))
    assert assert_error(refused, 409, "accessible_unavailable")["details"]["available"] == 0
    check = data(await acc_api.post(CHECK, json=body(acc_venue, accessible=1)))
    assert (check["available"], check["reason"], check["quantity"]) == \
        (False, "accessible_unavailable", 2)
    # general seats are still there for everyone else
    data(await acc_api.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 2)), 201)


@pytest.mark.parametrize(("choice", "field"), [
    ({"accessible": 1, "seats": seats("A1", "A2")}, "accessible"),
    ({"companions": False, "quantity": 1}, "companions"),
    ({"accessible": 0}, "accessible"),
    ({"accessible": 5}, "accessible"),  # 10 seats: over the 8 a hold may have
    ({"accessible": 9, "companions": False}, "accessible"),
    ({"accessible": "two"}, "accessible"),
    ({"accessible": 1, "companions": "yes"}, "companions"),
    ({"accessible": 1, "quantity": 1}, "quantity"),
])
async def test_bad_accessible_requests_are_refused(acc_api: httpx.AsyncClient,
                                                   acc_venue: VenueFixture, choice: dict,
                                                   field: str) -> None:
    error = assert_error(await acc_api.post(CREATE, json=body(acc_venue, **choice)), 422)
    assert error["details"]["field"] == field, error


@pytest.mark.parametrize("section", ["Orchestra Center", "Lawn"])
async def test_a_section_without_spaces_says_so(acc_api: httpx.AsyncClient,
                                                acc_venue: VenueFixture, section: str) -> None:
    resp = await acc_api.post(CREATE, json={"section_id": acc_venue.sections[section],
                                            "event_date": DAY, "accessible": 1})
    assert "no wheelchair spaces" in assert_error(resp, 422)["message"]


async def test_a_retry_replays_and_a_different_ask_under_the_key_is_refused(
        acc_api: httpx.AsyncClient, acc_venue: VenueFixture) -> None:
    key = {"Idempotency-Key": "acc-1"}
    first = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1), headers=key),
                 201)
    again = data(await acc_api.post(CREATE, json=body(acc_venue, accessible=1), headers=key),
                 201)
    assert again["hold_id"] == first["hold_id"] and again["seats"] == first["seats"]
    # as many seats (two spaces without companions), another ask
    other = body(acc_venue, accessible=2, companions=False)
    assert_error(await acc_api.post(CREATE, json=other, headers=key), 422,
                 "idempotency_key_reused")
    general = hold_body(acc_venue.sections[SECTION], 2)
    assert_error(await acc_api.post(CREATE, json=general, headers=key), 422,
                 "idempotency_key_reused")


async def test_fans_asking_at_once_never_share_a_space(acc_venue: VenueFixture,
                                                       open_api: ApiOpener) -> None:
    """Twelve fans ask for a space with its companion while eight others take the general
    seats of the same rows, at the same moment: three pairs, three fans."""
    clients = [open_api(client_addr=(f"10.0.1.{i}", 40000)) for i in range(20)]
    opened = [await c.__aenter__() for c in clients]
    try:
        asks = [c.post(CREATE, json=body(acc_venue, accessible=1)) for c in opened[:12]]
        general = [c.post(CREATE, json=hold_body(acc_venue.sections[SECTION], 8))
                   for c in opened[12:]]
        answers = await asyncio.gather(*asks, *general)
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    accessible, others = answers[:12], answers[12:]
    assert sorted(r.status_code for r in accessible) == [201] * 3 + [409] * 9
    got = [tuple(s["row"] + str(s["seat"]) for s in r.json()["data"]["seats"])
           for r in accessible if r.status_code == 201]
    assert sorted(got) == [("S15", "S16"), ("T1", "T2"), ("T29", "T30")]
    assert all(r.json()["error"]["code"] == "accessible_unavailable"
               for r in accessible if r.status_code == 409)
    taken = {s["row"] + str(s["seat"]) for r in others for s in r.json()["data"]["seats"]}
    assert all(r.status_code == 201 for r in others) and len(taken) == 64
    assert not taken & {"S15", "S16", "T1", "T2", "T29", "T30"}
