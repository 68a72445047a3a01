"""Checkout, payment confirmation (demo or manual recovery) and the Stripe webhook."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs
from api import shapes
from api.auth import Principal, optional_principal
from api.inputs import field_uuid, json_body, read_body
from api.state import amphi
from ledger.models import Order, OrderStatus
from ledger.orders import Buyer
from services import finalize

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 1_048_576
FAILED_EVENTS = {
    "payment_intent.payment_failed": "The payment failed.",
    "payment_intent.canceled": "The payment was canceled.",
}


def _buyer(body: dict[str, Any], principal: Principal | None) -> Buyer:
    billing = body.get("billing_details") or {}
    if not isinstance(billing, dict):
        raise errors.InvalidRequest("'billing_details' must be an object.", field="billing_details")
    email = billing.get("email") or (principal.email if principal else "")
    # PostgreSQL text cannot hold NUL: refused here rather than failing the INSERT
    if not isinstance(email, str) or "@" not in email or len(email) > 320 or "\x00" in email:
        raise errors.ValidationFailed("'billing_details.email' must be an email address.",
                                      field="billing_details.email")
    names = []
    for key in ("firstName", "lastName"):
        value = billing.get(key, "")
        if not isinstance(value, str) or len(value) > 100 or "\x00" in value:
            raise errors.ValidationFailed(f"'billing_details.{key}' must be text of at most "
                                          "100 characters.", field=f"billing_details.{key}")
        names.append(value.strip())
    return Buyer(email.strip(), names[0], names[1], principal.user_id if principal else None)


def _checkout_json(order: Order, demo: bool) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "order_number": order.order_number,
        "status": order.status.value.upper(),
        "total": shapes.dollars(order.total_cents),
        "currency": order.currency,
        "client_secret": order.client_secret,
        "demo_mode": demo,
    }


async def checkout(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    body = await json_body(request)
    hold_id = field_uuid(body, "hold_id")
    buyer = _buyer(body, principal)
    logs.bind(hold_id=str(hold_id))
    purchases = amphi(request).purchases
    order = await purchases.check_out(hold_id, buyer)
    return shapes.ok(_checkout_json(order, purchases.payments.demo))


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
    logs.bind(order_id=str(order_id))
    done = await amphi(request).purchases.confirm(order_id,
                                                  principal.user_id if principal else None)
    if done.status not in CONFIRM_MESSAGES:
        raise errors.CheckoutConflict(
            f"This order is {done.status.value}; it cannot be confirmed.")
    return shapes.ok({"order_number": done.order_number, "status": done.status.value.upper(),
                      "message": CONFIRM_MESSAGES[done.status]})


async def stripe_webhook(request: Request) -> JSONResponse:
    services = amphi(request)
    secret = services.settings.stripe_webhook_secret
    if not secret:
        raise errors.InvalidRequest("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    payload = await read_body(request, WEBHOOK_MAX_BYTES)
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("stripe-signature"), secret)
    except (ValueError, stripe.SignatureVerificationError):
        raise errors.InvalidRequest("The Stripe signature is missing or invalid.") from None
    try:  # signed by Stripe's secret, yet not necessarily an event of the expected shape
        etype = event["type"]
        handled = etype == "payment_intent.succeeded" or etype in FAILED_EVENTS
        intent = event["data"]["object"].to_dict() if handled else None
        intent_id = str(intent["id"]) if intent else ""
    except (KeyError, TypeError, AttributeError):
        raise errors.InvalidRequest("The event is not a Stripe event.") from None
    metadata = (intent.get("metadata") or {}) if intent else {}
    if not intent or metadata.get("amphitheater") != "true":
        return shapes.ok({"received": True, "handled": False})
    try:
        order_id = uuid.UUID(str(metadata.get("order_id")))
    except ValueError:  # not one of ours; an error status would only make Stripe retry
        log.warning("webhook intent names no order", extra={"intent": intent_id})
        return shapes.ok({"received": True, "handled": False})
    logs.bind(order_id=str(order_id), stripe_event=event["id"])
    ref = finalize.StripeEventRef(event["id"], etype)
    if etype == "payment_intent.succeeded":
        handled = await services.purchases.payment_succeeded(order_id, intent_id, ref)
    else:
        handled = await services.purchases.payment_failed(order_id, intent_id, ref,
                                                          FAILED_EVENTS[etype])
    if handled:
        log.info("webhook accepted", extra={"event_type": etype})
    return shapes.ok({"received": True, "handled": handled})


routes = [
    Route("/api/payments/amphitheater/checkout/", checkout, methods=["POST"]),
    Route("/api/payments/amphitheater/confirm/", confirm, methods=["POST"]),
    Route("/api/payments/webhook/stripe/", stripe_webhook, methods=["POST"]),
]
