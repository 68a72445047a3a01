"""Concurrent checkouts of one hold (a double click, a retry racing the first request) make
one order with one payment intent, and every answer names it: in demo mode and with Stripe
(where the intent is created outside any transaction and the first one recorded wins)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from amphi.settings import Settings
from tests._servers import free_port
from tests.api._support import BASE, assert_error, data
from tests.payments._support import CHECKOUT, bearer, checkout_body, make_hold, rows

HOLDS = f"{BASE}/holds"


@pytest.mark.parametrize("mode", ["demo", "stripe"])
async def test_eight_checkouts_of_one_hold_make_one_order(
    open_api, demo_settings: Settings, stripe_settings: Settings, venue,
    ledger_engine: Engine, mode: str,
) -> None:
    settings = demo_settings if mode == "demo" else stripe_settings
    fan = bearer(settings, "double-clicker")
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Right"], 2, headers=fan)
        answers = await asyncio.gather(*[
            api.post(CHECKOUT, json=checkout_body(hold["hold_id"]), headers=fan)
            for _ in range(8)])
    orders = [data(a) for a in answers]
    assert len({(o["order_id"], o["order_number"], o["client_secret"]) for o in orders}) == 1
    found = rows(ledger_engine, "SELECT id, payment_intent_id, status FROM orders "
                                "WHERE hold_id = :h", h=hold["hold_id"])
    assert len(found) == 1 and str(found[0]["id"]) == orders[0]["order_id"]
    assert found[0]["payment_intent_id"] and found[0]["status"] == "pending"
    assert orders[0]["client_secret"].startswith(found[0]["payment_intent_id"])
    lines = rows(ledger_engine, "SELECT count(*) AS n FROM order_lines WHERE order_id = :o",
                 o=orders[0]["order_id"])
    assert lines[0]["n"] == 2


async def test_stripe_down_is_a_clear_503_and_a_retry_completes_the_same_order(
    open_api, stripe_settings: Settings, venue, ledger_engine: Engine,
) -> None:
    """Nothing answers at Stripe's address: the checkout answers 503 (not a 500, not a
    hang), the hold stays the fan's, and the order it wrote waits without an intent. Once
    Stripe is back, checking out again completes that same order."""
    fan = bearer(stripe_settings, "patient-fan")
    down = stripe_settings.replace(stripe_api_base=f"http://127.0.0.1:{free_port()}",
                                   stripe_timeout_seconds=2)
    async with open_api(down) as api:
        hold = await make_hold(api, venue.sections["Terrace"], 2, headers=fan)
        answer = await api.post(CHECKOUT, json=checkout_body(hold["hold_id"]), headers=fan)
        assert_error(answer, 503, "service_unavailable")
        assert data(await api.get(f"{HOLDS}/{hold['hold_id']}/", headers=fan))["status"] == \
            "active"
    [waiting] = rows(ledger_engine, "SELECT id, payment_intent_id, status FROM orders "
                                    "WHERE hold_id = :h", h=hold["hold_id"])
    assert (waiting["payment_intent_id"], waiting["status"]) == (None, "pending")
    async with open_api(stripe_settings) as api:
        order = data(await api.post(CHECKOUT, json=checkout_body(hold["hold_id"]),
                                    headers=fan))
    assert order["order_id"] == str(waiting["id"])
    assert order["client_secret"] and not order["demo_mode"]
