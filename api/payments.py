"""Checkout, payment confirmation (demo or manual recovery) and the Stripe webhook."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import stripe
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs
from amphi.payments import DemoGateway, PaymentGateway
from api import shapes
from api.auth import Principal, optional_principal
from api.inputs import field_uuid, json_body
from engine import sales
from engine.geometry import Geometry
from engine.holds import Hold, HoldEngine
from ledger.models import Order, OrderStatus
from ledger.orders import (
    Buyer,
    LineSpec,
    attach_intent,
    insert_order,
    order_for_hold,
    order_values,
    payment_of,
)
from workers import finalize, jobs

log = logging.getLogger(__name__)

T = TypeVar("T")

WEBHOOK_MAX_BYTES = 1_048_576
STRIPE_QUEUE_SECONDS = 5  # a request waits this long for a free Stripe slot, then 503
FAILED_EVENTS = {
    "payment_intent.payment_failed": "The payment failed.",
    "payment_intent.canceled": "The payment was canceled.",
}


def _buyer(body: dict[str, Any], principal: Principal | None) -> Buyer:
    billing = body.get("billing_details") or {}
    if not isinstance(billing, dict):
        raise errors.InvalidRequest("'billing_details' must be an object.", field="billing_details")
    email = billing.get("email") or (principal.email if principal else "")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise errors.ValidationFailed("'billing_details.email' must be an email address.",
                                      field="billing_details.email")
    names = []
    for key in ("firstName", "lastName"):
        value = billing.get(key, "")
        if not isinstance(value, str) or len(value) > 100:
            raise errors.ValidationFailed(f"'billing_details.{key}' must be text of at most "
                                          "100 characters.", field=f"billing_details.{key}")
        names.append(value.strip())
    return Buyer(email.strip(), names[0], names[1], principal.user_id if principal else None)


def _checkout_json(order: Order, payments: PaymentGateway) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "order_number": order.order_number,
        "status": order.status.value.upper(),
        "total": shapes.dollars(order.total_cents),
        "currency": order.currency,
        "client_secret": order.client_secret,
        "demo_mode": payments.demo,
    }


def _check_owner(owner: str | None, principal: Principal | None, what: str) -> None:
    if owner and (principal is None or principal.user_id != owner):
        raise errors.Forbidden(f"This {what} belongs to another account.")


async def checkout(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    body = await json_body(request)
    hold_id = field_uuid(body, "hold_id")
    buyer = _buyer(body, principal)
    state = request.app.state
    engine: HoldEngine = state.holds
    logs.bind(hold_id=str(hold_id))
    hold, now_ms = await engine.get_with_time(str(hold_id))
    _check_owner(hold.owner, principal, "hold")
    payments: PaymentGateway = state.payments

    order = None
    if hold.status == "active" and hold.expires_ms > now_ms:
        order = await _new_order(state, hold, buyer)
        if order is not None and order.client_secret:  # demo mode: written with its intent
            logs.bind(order_id=str(order.id))
            return shapes.ok(_checkout_json(order, payments))
    async with state.sessions() as session:
        # a retried checkout (or one that lost the race to create the order), or one whose
        # payment intent is still to be made
        order = order or await session.run_sync(order_for_hold, hold_id)
        if order is None:
            raise errors.HoldNotActive("This seat hold has expired; please choose seats again.")
        logs.bind(order_id=str(order.id))
        if order.status in (OrderStatus.FAILED, OrderStatus.EXPIRED):
            raise errors.CheckoutConflict("This hold's order failed; please choose seats again.")
        if order.payment_intent_id is None and order.status == OrderStatus.PENDING:
            # Stripe is called outside any transaction; concurrent checkouts of one order get
            # the same intent (Stripe's idempotency key is the order's) and one records it.
            intent = await stripe_call(state, payments.create_intent, order_id=str(order.id),
                                       hold_id=str(hold_id), order_number=order.order_number,
                                       amount_cents=order.total_cents,
                                       email=order.buyer_email)
            await attach_intent(session, order.id, intent, payments.demo)
            await session.commit()
            # the intent recorded: this one, or a concurrent checkout's
            order = await session.get(Order, order.id, populate_existing=True)
        return shapes.ok(_checkout_json(order, payments))


async def _new_order(state: Any, hold: Hold, buyer: Buyer) -> Order | None:
    """The hold's order, written by one statement (with its intent in demo
    mode, where making one is free); None if the hold has one already. Returns the row as
    written (not attached to a session)."""
    section = state.catalog.section_by_slug(hold.section)
    geometry = Geometry(section.rows or 1, section.seats_per_row or 1)
    lines = ([LineSpec(i, geometry.seat(i).row, geometry.seat(i).seat) for i in hold.seats]
             if section.reserved else [LineSpec(None, None, None)] * hold.quantity)
    payments: PaymentGateway = state.payments
    order_id, hold_id = uuid.uuid4(), uuid.UUID(hold.hold_id)
    total_cents = hold.price_cents * len(lines)
    intent = (payments.intent_for(order_id=str(order_id), hold_id=str(hold_id),
                                  amount_cents=total_cents)
              if isinstance(payments, DemoGateway) else None)
    values = order_values(order_id=order_id, hold_id=hold_id, buyer=buyer,
                          section_id=section.id, event_date=hold.event_date,
                          unit_price_cents=hold.price_cents, quantity=len(lines),
                          intent=intent, demo=payments.demo)
    async with state.db_autocommit.connect() as conn:
        number = await insert_order(conn, values, lines)
    if number is None:
        return None  # a retry, or a concurrent checkout of the same hold
    log.info("order created", extra={"order_id": str(order_id), "order_number": number})
    return Order(**values, order_number=number, currency="usd")


async def stripe_call(state: Any, fn: Callable[..., T], **kwargs: Any) -> T:
    """A call to the payment provider, in a thread, at most STRIPE_MAX_CONCURRENCY at once
    per process: a slow Stripe then costs its own callers time, not every other request
    the threads and database connections they would wait for. Down or overloaded: 503."""
    slots: asyncio.Semaphore = state.stripe_slots
    try:
        async with asyncio.timeout(STRIPE_QUEUE_SECONDS):
            await slots.acquire()
    except TimeoutError:
        raise errors.ServiceUnavailable("The payment provider is busy; please retry.") from None
    try:
        return await run_in_threadpool(fn, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        log.warning("payment provider unavailable", extra={"error": type(exc).__name__})
        raise errors.ServiceUnavailable(
            "The payment provider is not answering; please retry.") from exc
    finally:
        slots.release()


CONFIRM_MESSAGES = {
    OrderStatus.COMPLETED: "Amphitheater tickets issued successfully",
    OrderStatus.REFUND_REQUIRED: "The seats were gone when the payment arrived; the order will be "
                                 "refunded.",
    OrderStatus.REFUNDED: "The seats were gone when the payment arrived; the payment was "
                          "refunded.",
}


async def confirm(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    body = await json_body(request)
    order_id = field_uuid(body, "order_id")
    state = request.app.state
    logs.bind(order_id=str(order_id))
    async with state.db_autocommit.connect() as conn:
        order = await payment_of(conn, order_id)
    if order is None:
        raise errors.OrderNotFound()
    _check_owner(order.user_id, principal, "order")
    intent_id, number = order.payment_intent_id, order.order_number
    if intent_id is None:
        raise errors.CheckoutConflict("This order has no payment yet; check out first.")
    payments: PaymentGateway = state.payments
    if not payments.demo:
        intent = await stripe_call(state, payments.retrieve, intent_id=intent_id)
        if intent.status != "succeeded":
            raise errors.PaymentNotCompleted(status=intent.status)
    # Finalised in this request, batched with the other confirms of this moment: the seats
    # are sold and the tickets written when it answers.
    status = await state.confirms.submit(finalize.Payment(order_id, accepted_at=time.time()))
    if status not in CONFIRM_MESSAGES:
        raise errors.CheckoutConflict(f"This order is {status.value}; it cannot be confirmed.")
    return shapes.ok({"order_number": number, "status": status.value.upper(),
               "message": CONFIRM_MESSAGES[status]})


async def stripe_webhook(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    if not settings.stripe_webhook_secret:
        raise errors.InvalidRequest("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    payload = await request.body()
    if len(payload) > WEBHOOK_MAX_BYTES:
        raise errors.PayloadTooLarge()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret
        )
    except (ValueError, stripe.SignatureVerificationError):
        raise errors.InvalidRequest("The Stripe signature is missing or invalid.") from None
    etype = event["type"]
    handled = etype == "payment_intent.succeeded" or etype in FAILED_EVENTS
    intent = event["data"]["object"].to_dict() if handled else None
    metadata = (intent.get("metadata") or {}) if intent else {}
    if not handled or metadata.get("amphitheater") != "true":
        return shapes.ok({"received": True, "handled": False})
    try:
        order_id = uuid.UUID(str(metadata.get("order_id")))
    except ValueError:  # not one of ours; an error status would only make Stripe retry
        log.warning("webhook intent names no order", extra={"intent": intent["id"]})
        return shapes.ok({"received": True, "handled": False})
    logs.bind(order_id=str(order_id), stripe_event=event["id"])
    state = request.app.state
    async with state.db_autocommit.connect() as conn:
        found = await payment_of(conn, order_id)
    if found is None or found.payment_intent_id != intent["id"]:
        log.warning("webhook for an unknown order or intent", extra={"intent": intent["id"]})
        return shapes.ok({"received": True, "handled": False})
    logs.bind(hold_id=str(found.hold_id))
    if etype == "payment_intent.succeeded":
        await _secure_seats(state.holds, order_id, found.hold_id)
        payment = finalize.Payment(order_id, finalize.StripeEventRef(event["id"], etype),
                                   accepted_at=time.time())
        await _queued(state.payments_queue.submit(payment))
    else:
        await _queued(run_in_threadpool(jobs.enqueue_fail, state.queue, order_id, event["id"],
                                        etype, FAILED_EVENTS[etype]))
    log.info("webhook accepted", extra={"event_type": etype})
    return shapes.ok({"received": True, "handled": True})


async def _secure_seats(engine: HoldEngine, order_id: uuid.UUID, hold_id: uuid.UUID) -> None:
    """Sell the paid order its hold's seats now, before any queue: from here a backlog can
    delay its tickets, never cost its seats. A hold that had already ended is for
    finalisation to settle (same seats, others, or a refund)."""
    block = await engine.locate(str(hold_id))
    sale = await sales.secure(engine.client, block, order_id=str(order_id),
                              hold_id=str(hold_id), via=engine.pipeline)
    log.info("seats secured" if sale else "the hold had ended; finalisation decides",
             extra={"mode": sale.mode if sale else "none", "seats": sale.seats if sale else []})


async def _queued(enqueue: Awaitable[Any]) -> None:
    """Stripe retries on an error status: answer 503 when the work was not queued."""
    try:
        await enqueue
    except Exception as exc:
        log.warning("could not enqueue webhook work", extra={"error": repr(exc)})
        raise errors.ServiceUnavailable() from exc


routes = [
    Route("/api/payments/amphitheater/checkout/", checkout, methods=["POST"]),
    Route("/api/payments/amphitheater/confirm/", confirm, methods=["POST"]),
    Route("/api/payments/webhook/stripe/", stripe_webhook, methods=["POST"]),
]
