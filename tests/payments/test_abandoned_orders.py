"""Pending orders whose fan walked away expire (the worker's minute cron job), and a payment
that still arrives for one is honoured."""

from __future__ import annotations

from sqlalchemy import Engine, text

from amphi.settings import Settings
from tests.api._support import data
from tests.payments._support import (
    bearer,
    checkout,
    confirm,
    make_hold,
    one_set_of_tickets,
    order_row,
)
from workers.sweep import PAYMENT_GRACE, expire_abandoned_orders


def _age(engine: Engine, order_id: str, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET created_at = now() - make_interval(secs => :s) "
                          "WHERE id = :id"), {"s": seconds, "id": order_id})


async def test_abandoned_orders_expire_and_a_late_payment_still_issues(
    open_api, demo_settings: Settings, venue, ledger_engine: Engine, worker
) -> None:
    fan = bearer(demo_settings, "walker", "walker@example.com")
    async with open_api(demo_settings) as api:
        old = await checkout(api, (await make_hold(api, venue.sections["Terrace"], 2,
                                                   headers=fan))["hold_id"], headers=fan)
        recent = await checkout(api, (await make_hold(api, venue.sections["Terrace"], 1,
                                                      headers=fan))["hold_id"], headers=fan)
        limit = demo_settings.hold_ttl_seconds + PAYMENT_GRACE.total_seconds()
        _age(ledger_engine, old["order_id"], limit + 60)
        _age(ledger_engine, recent["order_id"], limit - 60)

        worker.use(demo_settings)
        assert expire_abandoned_orders() == 1
        assert order_row(ledger_engine, old["order_id"])["status"] == "expired"
        assert order_row(ledger_engine, recent["order_id"])["status"] == "pending"
        assert expire_abandoned_orders() == 0  # safe to run again

        # the payment arrives after all: the fan gets tickets, not an error
        done = data(await confirm(api, old["order_id"], headers=fan))
        assert done["status"] == "COMPLETED"
    assert order_row(ledger_engine, old["order_id"])["status"] == "completed"
    one_set_of_tickets(ledger_engine, old["order_id"], 2)
