"""Payments: Stripe PaymentIntents, or demo mode when no STRIPE_SECRET_KEY is set."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import stripe

from amphi import errors
from amphi.settings import Settings

if TYPE_CHECKING:  # stripe's typed parameters, for the type checker only
    from stripe.params import PaymentIntentListParams

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    client_secret: str
    status: str  # Stripe's: requires_payment_method, processing, succeeded, canceled, ...
    amount: int
    metadata: dict[str, str] = field(default_factory=dict)
    created: int = 0  # unix seconds


class PaymentGateway(Protocol):
    demo: bool

    def create_intent(self, *, order_id: str, hold_id: str, order_number: str,
                      amount_cents: int, email: str) -> Intent: ...

    def retrieve(self, intent_id: str) -> Intent: ...

    def refund(self, intent_id: str, *, order_id: str) -> str: ...

    def succeeded_intents(self, *, since: datetime) -> Iterator[Intent]: ...


class DemoGateway:
    """No money moves: the demo confirm endpoint stands in for the card payment."""

    demo = True

    def create_intent(self, *, order_id: str, hold_id: str, order_number: str,
                      amount_cents: int, email: str) -> Intent:
        return self.intent_for(order_id=order_id, hold_id=hold_id, amount_cents=amount_cents)

    @staticmethod
    def intent_for(*, order_id: str, hold_id: str, amount_cents: int) -> Intent:
        """The order's demo intent: made up from its id, so checkout writes it with the order."""
        intent_id = f"demo_pi_{order_id.replace('-', '')}"
        return Intent(intent_id, f"{intent_id}_secret_demo", "requires_payment_method",
                      amount_cents, {"amphitheater": "true", "order_id": order_id,
                                     "hold_id": hold_id})

    def retrieve(self, intent_id: str) -> Intent:
        raise errors.InvalidRequest("Demo mode has no payment intents to look up.")

    def refund(self, intent_id: str, *, order_id: str) -> str:
        return "demo"

    def succeeded_intents(self, *, since: datetime) -> Iterator[Intent]:
        return iter(())


def _intent(pi: stripe.PaymentIntent) -> Intent:
    metadata = pi.metadata.to_dict() if pi.metadata else {}
    return Intent(pi.id, pi.client_secret or "", pi.status, pi.amount, metadata,
                  int(pi.created or 0))


class StripeGateway:
    demo = False

    def __init__(self, settings: Settings) -> None:
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses=({"api": settings.stripe_api_base} if settings.stripe_api_base
                            else None),
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
        )

    def create_intent(self, *, order_id: str, hold_id: str, order_number: str,
                      amount_cents: int, email: str) -> Intent:
        pi = self.client.v1.payment_intents.create(
            params={
                "amount": amount_cents,
                "currency": "usd",
                "receipt_email": email,
                "description": f"Pacific Amphitheatre {order_number}",
                "metadata": {"amphitheater": "true", "order_id": order_id,
                             "hold_id": hold_id, "order_number": order_number},
            },
            # Stripe replays the same intent for a retried create of the same order.
            options={"idempotency_key": f"amphi-order-{order_id}"},
        )
        return _intent(pi)

    def retrieve(self, intent_id: str) -> Intent:
        return _intent(self.client.v1.payment_intents.retrieve(intent_id))

    def refund(self, intent_id: str, *, order_id: str) -> str:
        refund = self.client.v1.refunds.create(
            params={"payment_intent": intent_id, "metadata": {"order_id": order_id}},
            options={"idempotency_key": f"amphi-refund-{order_id}"},
        )
        return refund.id

    def succeeded_intents(self, *, since: datetime) -> Iterator[Intent]:
        """Our succeeded PaymentIntents (metadata amphitheater=true) created since `since`.
        Stripe lists newest first, so paging stops at a page that is all older."""
        cutoff = int(since.timestamp())
        params: PaymentIntentListParams = {"limit": 100}
        while True:
            page = self.client.v1.payment_intents.list(params=params)
            for pi in page.data:
                intent = _intent(pi)  # metadata as a dict: a StripeObject has no .get()
                ours = intent.metadata.get("amphitheater") == "true"
                if pi.created >= cutoff and pi.status == "succeeded" and ours:
                    yield intent
            if not page.has_more or not page.data or all(pi.created < cutoff for pi in page.data):
                return
            params["starting_after"] = page.data[-1].id


def gateway(settings: Settings) -> PaymentGateway:
    return DemoGateway() if settings.demo_mode else StripeGateway(settings)
