"""The whole purchase over HTTP in demo mode: hold, checkout, confirm, the fan's tickets;
who may check out and see what."""

from __future__ import annotations

import asyncio
import re
import uuid

import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from tests.api._support import DAY, assert_error, data
from tests.payments._support import (
    CHECKOUT,
    MY_ALL,
    MY_AMPH,
    assert_block_matches_ledger,
    bearer,
    block_of,
    block_state,
    checkout,
    checkout_body,
    confirm,
    make_hold,
    one_set_of_tickets,
    order_lines,
    order_row,
    png_from_data_uri,
    row_counts,
)

# the seed document's my-tickets item, field for field
MY_TICKET_FIELDS = {
    "id", "ticket_code", "event_name", "event_date", "section", "row", "seat", "seat_location",
    "price_paid", "status", "qr_code", "includes_festival_access", "festival_day_ticket_code",
}
CHECKOUT_FIELDS = {"order_id", "order_number", "total", "client_secret"}
ISSUED = {"order_number", "status", "message"}


async def test_demo_purchase_end_to_end(open_api, demo_settings: Settings, venue,
                                        redis_client: redis.Redis, ledger_engine: Engine,
                                        email_queue) -> None:
    fan = bearer(demo_settings, "fan-1", "fan1@example.com")
    block = block_of("Orchestra Center")
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Center"], 2, headers=fan)
        seats = hold_seats = sorted(
            (s["row"], s["seat"]) for s in hold["seats"])
        before = block_state(redis_client, block)
        indices = before.indices("H")
        assert (before.held, before.sold, len(indices)) == (2, 0, 2)

        order = await checkout(api, hold["hold_id"], email="fan1@example.com", headers=fan)
        assert order.keys() >= CHECKOUT_FIELDS, order
        uuid.UUID(order["order_id"])
        assert re.fullmatch(r"ORD-\d+", order["order_number"]), order
        assert order["total"] == 250
        assert isinstance(order["client_secret"], str) and order["client_secret"]
        row = order_row(ledger_engine, order["order_id"])
        assert (row["status"], row["user_id"], row["buyer_email"], row["quantity"],
                row["total_cents"]) == ("pending", "fan-1", "fan1@example.com", 2, 25_000)
        assert [ln["seat_index"] for ln in order_lines(ledger_engine, order["order_id"])] == \
            indices
        assert row_counts(ledger_engine)["tickets"] == 0

        # checking the same hold out again is the same order
        again = await checkout(api, hold["hold_id"], email="fan1@example.com", headers=fan)
        assert (again["order_id"], again["order_number"]) == (order["order_id"],
                                                              order["order_number"])
        assert row_counts(ledger_engine)["orders"] == 1

        issued = data(await confirm(api, order["order_id"], headers=fan))
        assert issued == {"order_number": order["order_number"], "status": "COMPLETED",
                          "message": "Amphitheater tickets issued successfully"}
        # a repeated confirm answers the same and issues nothing more
        assert data(await confirm(api, order["order_id"], headers=fan)) == issued

        tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
        assert [t["seat_index"] for t in tickets] == indices  # the held seats
        assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
        after = assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Center")
        assert after.at(indices) == "SS"
        assert (after.held, after.sold) == (0, 2)
        assert email_queue.count == 1  # the confirmation email, for the worker

        mine = data(await api.get(MY_AMPH, headers=fan))
        assert len(mine) == 2
        by_code = {t["code"]: t for t in tickets}
        for item in mine:
            assert set(item) == MY_TICKET_FIELDS, item
            db = by_code[item["ticket_code"]]
            uuid.UUID(item["id"])
            assert item["ticket_code"].startswith("AMPH-")
            assert item["event_name"] == "OC MENA Festival Concert"
            assert item["event_date"] == DAY
            assert item["section"] == "Orchestra Center"
            assert (item["row"], item["seat"]) == (db["row"], db["seat"])
            assert item["seat_location"] == \
                f"Section Orchestra Center, Row {db['row']}, Seat {db['seat']}"
            assert item["price_paid"] == 125
            assert item["status"] == "ISSUED"
            png_from_data_uri(item["qr_code"])
            assert item["includes_festival_access"] is True
            assert item["festival_day_ticket_code"] == db["pass_code"]
        assert sorted((t["row"], t["seat"]) for t in mine) == seats == hold_seats

        everything = data(await api.get(MY_ALL, headers=fan))
        assert len(everything) == 4
        amph = [t for t in everything if t["kind"] == "amphitheater"]
        passes = [t for t in everything if t["kind"] == "festival_day"]
        assert len(amph) == len(passes) == 2
        for t in amph:
            assert t["ticket_type_name"] == \
                "Pacific Amphitheatre - June 19, 2027 - Orchestra Center"
            meta = t["metadata"]
            assert meta["amphitheater"] is True
            assert (meta["section"], meta["event_date"]) == ("Orchestra Center", DAY)
            assert (meta["row"], meta["seat"]) == (by_code[t["ticket_code"]]["row"],
                                                   by_code[t["ticket_code"]]["seat"])
            assert (t["status"], t["is_comp"], t["price"]) == ("ISSUED", False, 125)
        assert sorted(p["ticket_code"] for p in passes) == sorted(
            t["pass_code"] for t in tickets)
        for p in passes:
            assert p["ticket_type_name"] == \
                "Festival Day Pass - Saturday, June 19, 2027 (Complimentary)"
            assert (p["is_comp"], p["price"], p["event_date"]) == (True, 0, DAY)
            png_from_data_uri(p["qr_code"])

        # somebody else sees none of it, and nobody without a token
        other = bearer(demo_settings, "fan-2", "fan2@example.com")
        assert data(await api.get(MY_AMPH, headers=other)) == []
        assert data(await api.get(MY_ALL, headers=other)) == []
        assert_error(await api.get(MY_AMPH), 401)
        assert_error(await api.get(MY_ALL), 401)


async def test_guest_purchase_is_seen_after_signing_in(open_api, demo_settings: Settings, venue,
                                                       redis_client: redis.Redis,
                                                       ledger_engine: Engine) -> None:
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Terrace"], 3)  # a guest
        order = await checkout(api, hold["hold_id"], email="Guest.Buyer@Example.com")
        assert order_row(ledger_engine, order["order_id"])["user_id"] is None
        assert data(await confirm(api, order["order_id"]))["status"] == "COMPLETED"
        one_set_of_tickets(ledger_engine, order["order_id"], 3)

        later = bearer(demo_settings, "signed-up-later", "guest.buyer@example.COM")
        mine = data(await api.get(MY_AMPH, headers=later))
        assert len(mine) == 3 and {t["section"] for t in mine} == {"Terrace"}
        everything = data(await api.get(MY_ALL, headers=later))
        assert sorted(t["kind"] for t in everything) == ["amphitheater"] * 3 + \
            ["festival_day"] * 3

        stranger = bearer(demo_settings, "stranger", "someone.else@example.com")
        assert data(await api.get(MY_AMPH, headers=stranger)) == []
        assert data(await api.get(MY_ALL, headers=stranger)) == []
    assert_block_matches_ledger(redis_client, ledger_engine, "Terrace")


async def test_lawn_purchase_has_unseated_lines(open_api, demo_settings: Settings, venue,
                                               redis_client: redis.Redis,
                                               ledger_engine: Engine) -> None:
    """General admission: the order's lines (written by checkout's one statement) name no
    seat, and each becomes a ticket without one."""
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 4)
        order = await checkout(api, hold["hold_id"], email="lawn@example.com")
        assert order_row(ledger_engine, order["order_id"])["quantity"] == 4
        assert order_lines(ledger_engine, order["order_id"]) == [
            {"line_no": n, "seat_index": None, "row": None, "seat": None} for n in range(1, 5)]
        assert data(await confirm(api, order["order_id"]))["status"] == "COMPLETED"
        tickets = one_set_of_tickets(ledger_engine, order["order_id"], 4)
        assert {(t["row"], t["seat"]) for t in tickets} == {(None, None)}
    assert_block_matches_ledger(redis_client, ledger_engine, "Lawn")


async def test_only_the_holder_checks_out_a_signed_in_hold(open_api, demo_settings: Settings,
                                                           venue, redis_client: redis.Redis,
                                                           ledger_engine: Engine) -> None:
    owner = bearer(demo_settings, "owner")
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Mezzanine Left"], 2, headers=owner)
        before = row_counts(ledger_engine)
        body = checkout_body(hold["hold_id"])
        assert_error(await api.post(CHECKOUT, json=body, headers=bearer(demo_settings, "thief")),
                     403, "forbidden")
        assert_error(await api.post(CHECKOUT, json=body), 403, "forbidden")  # a guest
        assert row_counts(ledger_engine) == before

        order = await checkout(api, hold["hold_id"], headers=owner)
        # nor can another account (or a guest) confirm the holder's order
        assert_error(await confirm(api, order["order_id"], bearer(demo_settings, "thief")),
                     403, "forbidden")
        assert_error(await confirm(api, order["order_id"]), 403, "forbidden")
        assert order_row(ledger_engine, order["order_id"])["status"] == "pending"
        assert row_counts(ledger_engine)["tickets"] == 0
        state = block_state(redis_client, block_of("Mezzanine Left"))
        assert (state.held, state.sold) == (2, 0)

        assert data(await confirm(api, order["order_id"], owner))["status"] == "COMPLETED"
    one_set_of_tickets(ledger_engine, order["order_id"], 2)


async def test_confirms_of_one_order_at_once_only_the_owner_s_sells(
        open_api, demo_settings: Settings, venue, ledger_engine: Engine) -> None:
    """Demo confirms are checked in their batch, on the locked order: a stranger's confirm
    in the same batch as the owner's is refused, the owner's completes, once."""
    owner, thief = bearer(demo_settings, "owner"), bearer(demo_settings, "thief")
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Terrace"], 3, headers=owner)
        order = await checkout(api, hold["hold_id"], headers=owner)
        answers = await asyncio.gather(*[
            confirm(api, order["order_id"], who)
            for who in (thief, {}, owner) * 2])
        for answer, who in zip(answers, ("thief", "guest", "owner") * 2, strict=True):
            if who == "owner":
                assert data(answer)["status"] == "COMPLETED"
                assert data(answer)["order_number"] == order["order_number"]
            else:
                assert_error(answer, 403, "forbidden")
        unknown = await confirm(api, str(uuid.uuid4()), owner)
        assert_error(unknown, 404, "order_not_found")
    one_set_of_tickets(ledger_engine, order["order_id"], 3)


async def test_concurrent_checkouts_of_one_hold_make_one_order(open_api, demo_settings: Settings,
                                                               venue,
                                                               ledger_engine: Engine) -> None:
    fan = bearer(demo_settings, "eager")
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Right"], 4, headers=fan)
        answers = await asyncio.gather(*[
            api.post(CHECKOUT, json=checkout_body(hold["hold_id"]), headers=fan)
            for _ in range(6)])
        orders = {(a["order_id"], a["order_number"], a["client_secret"])
                  for a in (data(r) for r in answers)}
        assert len(orders) == 1, orders
        counts = row_counts(ledger_engine)
        assert (counts["orders"], counts["order_lines"]) == (1, 4)
