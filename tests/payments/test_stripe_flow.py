"""The purchase in Stripe mode, against localstripe: a real PaymentIntent, a real card
payment, a signed webhook, a real `amphi worker` process; confirm as the manual recovery
path; a failed or canceled payment."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
import stripe
from sqlalchemy import Engine

from amphi.payments import StripeGateway
from amphi.settings import Settings
from tests.api._support import BASE, assert_error, data
from tests.payments._support import (
    DECLINED_CARD,
    SUCCEEDED,
    WEBHOOK_SECRET,
    assert_block_matches_ledger,
    assert_no_failed_jobs,
    bearer,
    block_of,
    block_state,
    checkout,
    confirm,
    deliver,
    intent_dict,
    make_hold,
    one_set_of_tickets,
    order_row,
    pay,
    row_counts,
    run_worker_process,
    stripe_client,
    stripe_event,
    stripe_event_count,
)

HANDLED = {"received": True, "handled": True}


async def test_stripe_checkout_webhook_and_worker(open_api, stripe_settings: Settings, venue,
                                                  redis_client: redis.Redis,
                                                  ledger_engine: Engine, queue,
                                                  tmp_path: Path, worker) -> None:
    sc = stripe_client(stripe_settings.stripe_api_base)
    fan = bearer(stripe_settings, "stripe-fan")
    async with open_api(stripe_settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Left"], 3, headers=fan)
        held = block_state(redis_client, block_of("Orchestra Left")).indices("H")
        order = await checkout(api, hold["hold_id"], email="stripe-fan@example.com",
                               headers=fan)
        assert order["total"] == 300
        row = order_row(ledger_engine, order["order_id"])
        intent_id = row["payment_intent_id"]
        assert intent_id.startswith("pi_") and row["demo"] is False
        assert order["client_secret"].startswith(f"{intent_id}_secret_")

        intent = intent_dict(sc, intent_id)  # created at "Stripe"
        assert intent["amount"] == 30_000 and intent["currency"] == "usd"
        assert intent["status"] == "requires_payment_method"
        assert intent["metadata"]["amphitheater"] == "true"
        assert intent["metadata"]["order_id"] == order["order_id"]
        assert intent["metadata"]["hold_id"] == hold["hold_id"]
        # the same hold checked out again: the same order and intent
        assert (await checkout(api, hold["hold_id"], email="stripe-fan@example.com",
                               headers=fan))["client_secret"] == order["client_secret"]

        # before the card payment, confirm refuses and nothing is issued
        assert_error(await confirm(api, order["order_id"], fan), 409, "payment_not_completed")
        assert order_row(ledger_engine, order["order_id"])["status"] == "pending"

        paid = pay(sc, intent_id)
        assert paid["status"] == "succeeded"
        event = stripe_event(paid)
        assert data(await deliver(api, event)) == HANDLED
        # accepted and queued; the worker does the work
        assert queue.count == 1
        assert order_row(ledger_engine, order["order_id"])["status"] == "pending"

    run_worker_process(stripe_settings, tmp_path / "worker.log")
    assert_no_failed_jobs(queue)

    row = order_row(ledger_engine, order["order_id"])
    assert row["status"] == "completed" and row["completed_at"] is not None
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert [t["seat_index"] for t in tickets] == held
    assert stripe_event_count(ledger_engine, event["id"]) == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Left")
    assert (state.held, state.sold, state.at(held)) == (0, 3, "SSS")
    # the worker ran the email job the finalisation enqueued: no SMTP, so an .eml file
    assert len(list(Path(stripe_settings.outbox_dir).glob("*.eml"))) == 1
    assert order_row(ledger_engine, order["order_id"])["email_sent_at"] is not None

    # Stripe delivers the event again: acknowledged, nothing new
    async with open_api(stripe_settings) as api:
        assert data(await deliver(api, event)) == HANDLED
    worker.run(stripe_settings)
    one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert stripe_event_count(ledger_engine, event["id"]) == 1
    assert row_counts(ledger_engine)["stripe_events"] == 1
    assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Left")


async def test_manual_confirm_after_payment_then_the_late_webhook(
    open_api, stripe_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, worker,
) -> None:
    """'Payment succeeded but no tickets': the webhook is lost, the fan confirms."""
    sc = stripe_client(stripe_settings.stripe_api_base)
    async with open_api(stripe_settings) as api:
        hold = await make_hold(api, venue.sections["Mezzanine Center"], 2)  # a guest
        order = await checkout(api, hold["hold_id"])
        intent_id = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        assert_error(await confirm(api, order["order_id"]), 409, "payment_not_completed")
        paid = pay(sc, intent_id)
        assert data(await confirm(api, order["order_id"])) == {
            "order_number": order["order_number"], "status": "COMPLETED",
            "message": "Amphitheater tickets issued successfully"}
        tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)

        event = stripe_event(paid)  # ... and the webhook arrives after all
        assert data(await deliver(api, event)) == HANDLED
    worker.run(stripe_settings)
    assert [t["code"] for t in one_set_of_tickets(ledger_engine, order["order_id"], 2)] == \
        [t["code"] for t in tickets]
    assert stripe_event_count(ledger_engine, event["id"]) == 1
    assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
    assert_block_matches_ledger(redis_client, ledger_engine, "Mezzanine Center")


@pytest.mark.parametrize("outcome", ["declined", "canceled"])
async def test_failed_payment_fails_the_order_and_frees_the_seats(
    open_api, stripe_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, worker, outcome: str,
) -> None:
    sc = stripe_client(stripe_settings.stripe_api_base)
    fan = bearer(stripe_settings, "unlucky")
    block = block_of("Orchestra Center")
    async with open_api(stripe_settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Center"], 4, headers=fan)
        seats = block_state(redis_client, block).indices("H")
        order = await checkout(api, hold["hold_id"], headers=fan)
        intent_id = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        if outcome == "declined":
            with pytest.raises(stripe.CardError):
                pay(sc, intent_id, DECLINED_CARD)
            etype, reason = "payment_intent.payment_failed", "The payment failed."
        else:
            sc.v1.payment_intents.cancel(intent_id)
            etype, reason = "payment_intent.canceled", "The payment was canceled."
        intent = intent_dict(sc, intent_id)
        assert intent["status"] == ("requires_payment_method" if outcome == "declined"
                                    else "canceled")
        event = stripe_event(intent, etype)
        assert data(await deliver(api, event)) == HANDLED
        worker.run(stripe_settings)

        row = order_row(ledger_engine, order["order_id"])
        assert (row["status"], row["failure_reason"]) == ("failed", reason)
        assert stripe_event_count(ledger_engine, event["id"]) == 1
        assert row_counts(ledger_engine)["tickets"] == 0
        state = block_state(redis_client, block)
        assert (state.held, state.sold, state.at(seats)) == (0, 0, "0000")
        shown = data(await api.get(f"{BASE}/holds/{hold['hold_id']}/"))
        assert shown["status"] == "released"
        # the hold is over: its order cannot be checked out again, and the seats are for sale
        assert_error(await api.post("/api/payments/amphitheater/checkout/",
                                    json={"hold_id": hold["hold_id"]}, headers=fan), 409)
        again = await make_hold(api, venue.sections["Orchestra Center"], 4)
        assert sorted((s["row"], s["seat"]) for s in again["seats"]) == \
            sorted((s["row"], s["seat"]) for s in hold["seats"])
    assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Center")


def test_stripe_gateway_against_localstripe(stripe_settings: Settings) -> None:
    """The gateway alone: create, read and refund a PaymentIntent with the real client."""
    gateway = StripeGateway(stripe_settings)
    order_id, hold_id = str(uuid.uuid4()), str(uuid.uuid4())
    intent = gateway.create_intent(order_id=order_id, hold_id=hold_id, order_number="ORD-1",
                                   amount_cents=12_500, email="gw@example.com")
    assert intent.id.startswith("pi_") and intent.client_secret.startswith(intent.id)
    assert (intent.amount, intent.status) == (12_500, "requires_payment_method")
    assert intent.metadata == {"amphitheater": "true", "order_id": order_id,
                               "hold_id": hold_id, "order_number": "ORD-1"}
    pay(stripe_client(stripe_settings.stripe_api_base), intent.id)
    assert gateway.retrieve(intent.id).status == "succeeded"
    refund_id = gateway.refund(intent.id, order_id=order_id)
    assert refund_id.startswith("re_")


async def test_signed_webhook_is_accepted_and_queued(open_api, demo_settings: Settings, venue,
                                                     ledger_engine: Engine, queue,
                                                     worker) -> None:
    """The webhook alone (no Stripe call involved): a well-signed payment_intent.succeeded
    for one of our orders is acknowledged, queued and finalised by the worker."""
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
        intent_id = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        event = stripe_event({"id": intent_id, "object": "payment_intent", "amount": 9_000,
                              "currency": "usd", "status": "succeeded",
                              "metadata": {"amphitheater": "true",
                                           "order_id": order["order_id"],
                                           "hold_id": hold["hold_id"]}})
        assert data(await deliver(api, event)) == HANDLED
    [job] = queue.get_jobs()  # one job, carrying the payment and its event
    assert job.func_name == "workers.jobs.finalize_payments"
    assert [p[:3] for p in job.args[0]] == [(order["order_id"], event["id"], SUCCEEDED)]
    worker.run(settings)
    one_set_of_tickets(ledger_engine, order["order_id"], 2)
    assert stripe_event_count(ledger_engine, event["id"]) == 1
