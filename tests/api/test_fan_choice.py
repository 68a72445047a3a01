"""Fans who choose: the seat map of a section, holds of the seats a fan picked, and "my
holds" (a fan who reloads the page finds their holds again)."""

from __future__ import annotations

import asyncio

import httpx
import redis

from amphi.settings import DEV_JWT_SECRET
from tests.api._support import BASE, DAY, assert_error, bearer, data, hold_body
from tests.api.test_holds import reload_with_sold

CREATE = f"{BASE}/holds/create/"
CHECK = f"{BASE}/check-availability/"
MINE = f"{BASE}/holds/"
GUEST = {"X-Guest-Id": "guest-3f9a1c0b7d2e4a68"}


def seat_map_url(venue, name: str) -> str:
    return f"{BASE}/venues/{venue.id}/sections/{venue.sections[name]}/seats/"


def pick_body(venue, name: str, seats: list[tuple[str, int]], **extra) -> dict:
    return {"section_id": venue.sections[name], "event_date": DAY,
            "seats": [{"row": r, "seat": n} for r, n in seats], **extra}


# -- the seat map ------------------------------------------------------------------------
async def test_seat_map_shows_free_held_and_sold_seats(api: httpx.AsyncClient, venue,
                                                       redis_client: redis.Redis) -> None:
    reload_with_sold(redis_client, venue, "Orchestra Left", [0, 41])  # A1, B2
    held = data(await api.post(CREATE, json=pick_body(venue, "Orchestra Left", [("C", 5)])),
                201)
    resp = await api.get(seat_map_url(venue, "Orchestra Left"), params={"event_date": DAY})
    body = data(resp)
    assert resp.headers["etag"]
    assert body["section_name"] == "Orchestra Left" and body["event_date"] == DAY
    assert body["seats_per_row"] == 40 and body["on_sale"] is True
    assert body["legend"] == {"0": "free", "H": "held", "S": "sold", "W": "wheelchair",
                              "C": "companion"}
    rows = body["rows"]
    assert [r["row"] for r in rows[:3]] == ["A", "B", "C"] and len(rows) == 20
    assert all(len(r["seats"]) == 40 for r in rows)
    assert rows[0]["seats"][0] == "S" and rows[1]["seats"][1] == "S"
    assert rows[2]["seats"][4] == "H"  # C5, the hold above
    assert (body["free"], body["held"], body["sold"]) == (797, 1, 2)
    assert (body["wheelchair"], body["companion"]) == (0, 0)  # none in this section
    # released: the map shows the seat free again
    await api.post(f"{BASE}/holds/{held['hold_id']}/release/")
    rows = data(await api.get(seat_map_url(venue, "Orchestra Left")))["rows"]
    assert rows[2]["seats"][4] == "0"


async def test_seat_map_answers_not_modified_to_its_etag(api: httpx.AsyncClient, venue) -> None:
    first = await api.get(seat_map_url(venue, "Terrace"), params={"event_date": DAY})
    again = await api.get(seat_map_url(venue, "Terrace"), params={"event_date": DAY},
                          headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content


async def test_seat_map_refusals(api: httpx.AsyncClient, venue) -> None:
    assert_error(await api.get(seat_map_url(venue, "Lawn")), 404)  # general admission
    assert_error(await api.get(seat_map_url(venue, "Terrace"),
                               params={"event_date": "2031-01-01"}), 404, "event_date_not_found")
    assert_error(await api.get(seat_map_url(venue, "Terrace"),
                               params={"event_date": "June 19"}), 422)
    other_venue = f"{BASE}/venues/00000000-0000-0000-0000-000000000001/sections/" \
                  f"{venue.sections['Terrace']}/seats/"
    assert_error(await api.get(other_venue), 404, "venue_not_found")


# -- picking seats ------------------------------------------------------------------------
async def test_pick_holds_exactly_the_seats_picked(api: httpx.AsyncClient, venue) -> None:
    # C12 and C14 leave C13 stranded: the fan's choice, allowed
    body = data(await api.post(CREATE, json=pick_body(venue, "Orchestra Center",
                                                      [("C", 14), ("C", 12)])), 201)
    assert body["quantity"] == 2
    assert body["seats"] == [{"row": "C", "seat": 12}, {"row": "C", "seat": 14}]
    assert body["total_price"] == 250
    shown = data(await api.get(f"{BASE}/holds/{body['hold_id']}/"))
    assert shown["seats"] == body["seats"] and shown["status"] == "active"


async def test_pick_is_all_or_nothing_and_names_the_seats_gone(api: httpx.AsyncClient,
                                                               venue) -> None:
    data(await api.post(CREATE, json=pick_body(venue, "Terrace", [("A", 1), ("A", 2)])), 201)
    resp = await api.post(CREATE, json=pick_body(venue, "Terrace",
                                                 [("A", 2), ("A", 3), ("A", 1)]))
    error = assert_error(resp, 409, "seats_unavailable")
    assert error["details"]["unavailable"] == [{"row": "A", "seat": 1}, {"row": "A", "seat": 2}]
    # nothing of the refused pick was held: A3 is still free
    data(await api.post(CREATE, json=pick_body(venue, "Terrace", [("A", 3)])), 201)


async def test_check_availability_of_picked_seats(api: httpx.AsyncClient, venue,
                                                  redis_client: redis.Redis) -> None:
    reload_with_sold(redis_client, venue, "Mezzanine Left", [2])  # A3
    free = data(await api.post(CHECK, json=pick_body(venue, "Mezzanine Left", [("A", 1)])))
    assert free["available"] is True and free["quantity"] == 1
    taken = data(await api.post(CHECK, json=pick_body(venue, "Mezzanine Left",
                                                      [("A", 3), ("A", 4)])))
    assert taken["available"] is False and taken["reason"] == "seats_unavailable"
    assert taken["unavailable_seats"] == [{"row": "A", "seat": 3}]


async def test_concurrent_pickers_of_the_same_seats_one_wins(open_api, venue) -> None:
    """Twenty fans (their own addresses) pick the same two seats at the same moment."""
    clients = [open_api(client_addr=(f"10.0.0.{i}", 40000)) for i in range(20)]
    opened = [await c.__aenter__() for c in clients]
    try:
        body = pick_body(venue, "Orchestra Right", [("A", 20), ("A", 21)])
        answers = await asyncio.gather(*(c.post(CREATE, json=body) for c in opened))
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    assert sorted(r.status_code for r in answers) == [201] + [409] * 19
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "seats_unavailable"


async def test_pick_keeps_the_limits_and_idempotency_of_any_hold(api: httpx.AsyncClient,
                                                                venue) -> None:
    body = pick_body(venue, "Terrace", [("F", 7), ("F", 8)])
    first = data(await api.post(CREATE, json=body, headers={"Idempotency-Key": "k-1"}), 201)
    again = data(await api.post(CREATE, json=body, headers={"Idempotency-Key": "k-1"}), 201)
    assert again["hold_id"] == first["hold_id"]
    other = pick_body(venue, "Terrace", [("F", 9), ("F", 10)])
    assert_error(await api.post(CREATE, json=other, headers={"Idempotency-Key": "k-1"}), 422,
                 "idempotency_key_reused")
    quantity = hold_body(venue.sections["Terrace"], 2)
    assert_error(await api.post(CREATE, json=quantity, headers={"Idempotency-Key": "k-1"}),
                 422, "idempotency_key_reused")
    nine = [("G", n) for n in range(1, 10)]
    assert_error(await api.post(CREATE, json=pick_body(venue, "Terrace", nine)), 422)


async def test_bad_picks_are_refused_clearly(api: httpx.AsyncClient, venue) -> None:
    cases = [
        pick_body(venue, "Lawn", [("A", 1)]),  # general admission has no seats to pick
        pick_body(venue, "Terrace", [("A", 51)]),  # the Terrace has 50 seats a row
        pick_body(venue, "Terrace", [("ZZ", 1)]),  # ... and 30 rows
        pick_body(venue, "Terrace", [("a", 1)]),
        pick_body(venue, "Terrace", [("A", 1), ("A", 1)]),  # twice the same seat
        pick_body(venue, "Terrace", [("A", 1)], quantity=2),  # quantity disagrees
        {"section_id": venue.sections["Terrace"], "event_date": DAY, "seats": []},
        {"section_id": venue.sections["Terrace"], "event_date": DAY, "seats": "A1"},
        {"section_id": venue.sections["Terrace"], "event_date": DAY,
         "seats": [{"row": "A", "seat": "1"}]},
        {"section_id": venue.sections["Terrace"], "event_date": DAY,
         "seats": [{"row": "A", "seat": 1, "extra": True}]},
    ]
    for body in cases:
        error = assert_error(await api.post(CREATE, json=body), 422, "validation_error")
        assert error["details"]["field"] in ("seats", "quantity"), error
    # a matching quantity is fine
    data(await api.post(CREATE, json=pick_body(venue, "Terrace", [("A", 1)], quantity=1)), 201)


# -- my holds -----------------------------------------------------------------------------
async def test_my_holds_lists_a_signed_in_fan_s_active_holds(api: httpx.AsyncClient,
                                                             venue) -> None:
    ana, ben = bearer(DEV_JWT_SECRET, "ana"), bearer(DEV_JWT_SECRET, "ben")
    first = data(await api.post(CREATE, headers=ana,
                                json=hold_body(venue.sections["Terrace"], 2)), 201)
    second = data(await api.post(CREATE, headers=ana,
                                 json=pick_body(venue, "Mezzanine Center", [("B", 3)])), 201)
    released = data(await api.post(CREATE, headers=ana,
                                   json=hold_body(venue.sections["Lawn"], 1)), 201)
    data(await api.post(f"{BASE}/holds/{released['hold_id']}/release/", headers=ana))
    data(await api.post(CREATE, headers=ben, json=hold_body(venue.sections["Terrace"], 1)), 201)

    mine = data(await api.get(MINE, headers=ana))
    assert sorted(h["hold_id"] for h in mine) == sorted([first["hold_id"], second["hold_id"]])
    by_id = {h["hold_id"]: h for h in mine}
    assert by_id[second["hold_id"]]["seats"] == [{"row": "B", "seat": 3}]
    assert by_id[first["hold_id"]]["total_price"] == first["total_price"]
    assert all(h["status"] == "active" and 0 < h["time_left_seconds"] <= 600 for h in mine)
    assert len(data(await api.get(MINE, headers=ben))) == 1


async def test_my_holds_of_a_guest_go_by_the_guest_id(api: httpx.AsyncClient, venue) -> None:
    made = data(await api.post(CREATE, headers=GUEST,
                               json=hold_body(venue.sections["Lawn"], 3)), 201)
    # another guest at the same address (one carrier's NAT) sees none of them
    data(await api.post(CREATE, json=hold_body(venue.sections["Lawn"], 1)), 201)
    assert [h["hold_id"] for h in data(await api.get(MINE, headers=GUEST))] == [made["hold_id"]]
    other = {"X-Guest-Id": "guest-0000000000000000"}
    assert data(await api.get(MINE, headers=other)) == []
    assert_error(await api.get(MINE), 401, "unauthorized")
    assert_error(await api.get(MINE, headers={"X-Guest-Id": "short"}), 422)
    assert_error(await api.post(CREATE, headers={"X-Guest-Id": "no spaces allowed here!"},
                                json=hold_body(venue.sections["Lawn"], 1)), 422)


async def test_my_holds_drops_holds_that_expired(open_api, venue) -> None:
    async with open_api(hold_ttl_seconds=1) as api:
        data(await api.post(CREATE, headers=GUEST, json=hold_body(venue.sections["Lawn"], 1)),
             201)
        assert len(data(await api.get(MINE, headers=GUEST))) == 1
        await asyncio.sleep(1.2)
        assert data(await api.get(MINE, headers=GUEST)) == []

