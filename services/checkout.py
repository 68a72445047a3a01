"""The purchase up to the tickets: checkout (the order and its payment intent), the fan's
confirm, and a payment that Stripe reports. Called by the API's handlers, which only read
the request and shape the answer; finalisation (services/finalize.py) issues the tickets.

Where a paid order's seats are made safe: `Purchases.payment_succeeded` and
`Purchases.confirm` sell the hold's seats in Redis before anything is queued.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import stripe
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from amphi import errors, logs
from amphi.coalesce import Coalescer
from amphi.geometry import Geometry, seat_lines
from amphi.outages import Outage
from amphi.payments import DemoGateway, PaymentGateway
from engine import sales
from engine.hold_types import Hold
from engine.holds import HoldEngine
from ledger.catalog import Catalog
from ledger.models import Order, OrderStatus
from ledger.orders import (
    Buyer,
    attach_intent,
    insert_order,
    order_for_hold,
    order_values,
    payment_of,
)
from services import finalize

log = logging.getLogger(__name__)

T = TypeVar("T")

STRIPE_QUEUE_SECONDS = 5  # a request waits this long for a free Stripe slot, then 503


@dataclass(frozen=True, slots=True)
class Confirmed:
    order_number: str
    status: OrderStatus


@dataclass(slots=True)
class Purchases:
    """The purchase use cases of one API process. `catalog` is called for the current
    catalog (the API refreshes it); `db` runs single statements in autocommit."""

    holds: HoldEngine
    catalog: Callable[[], Catalog]
    db: AsyncEngine
    sessions: async_sessionmaker[Any]
    payments: PaymentGateway
    stripe_slots: asyncio.Semaphore
    payments_queue: Coalescer[finalize.Payment, None]
    confirms: Coalescer[finalize.Payment, finalize.Outcome]
    enqueue_fail: Callable[[uuid.UUID, str, str, str], None]
    queue_outage: Outage  # RQ's Redis: logged once when it goes, once when it is back

    async def check_out(self, hold_id: uuid.UUID, buyer: Buyer) -> Order:
        """The hold's order with its payment intent: made now, or the one an earlier (or a
        concurrent) checkout of the same hold made."""
        hold, now_ms = await self.holds.get_with_time(str(hold_id))
        finalize.check_owner(hold.owner, buyer.user_id, "hold")
        order = None
        if hold.status == "active" and hold.expires_ms > now_ms:
            order = await self._new_order(hold, buyer)
            if order is not None and order.client_secret:  # demo mode: written with its intent
                logs.bind(order_id=str(order.id))
                return order
        async with self.sessions() as session:
            # a retried checkout (or one that lost the race to create the order), or one
            # whose payment intent is still to be made
            order = order or await session.run_sync(order_for_hold, hold_id)
            if order is None:
                raise errors.HoldNotActive(
                    "This seat hold has expired; please choose seats again.")
            logs.bind(order_id=str(order.id))
            if order.status in (OrderStatus.FAILED, OrderStatus.EXPIRED):
                raise errors.CheckoutConflict(
                    "This hold's order failed; please choose seats again.")
            if order.payment_intent_id is None and order.status == OrderStatus.PENDING:
                # Stripe is called outside any transaction; concurrent checkouts of one order
                # get the same intent (Stripe's idempotency key is the order's) and one
                # records it.
                intent = await self.stripe_call(
                    self.payments.create_intent, order_id=str(order.id), hold_id=str(hold_id),
                    order_number=order.order_number, amount_cents=order.total_cents,
                    email=order.buyer_email)
                await attach_intent(session, order.id, intent, self.payments.demo)
                await session.commit()
                # the intent recorded: this one, or a concurrent checkout's
                order = await session.get(Order, order.id, populate_existing=True)
                assert order is not None
            return order

    async def _new_order(self, hold: Hold, buyer: Buyer) -> Order | None:
        """The hold's order, written by one statement (with its intent in demo mode, where
        making one is free); None if the hold has one already. Returns the row as written
        (not attached to a session)."""
        section = self.catalog().section_by_slug(hold.section)
        geometry = (Geometry(section.rows or 1, section.seats_per_row or 1) if section.reserved
                    else None)
        lines = seat_lines(geometry, hold.seats, hold.quantity)
        order_id, hold_id = uuid.uuid4(), uuid.UUID(hold.hold_id)
        intent = (self.payments.intent_for(order_id=str(order_id), hold_id=str(hold_id),
                                           amount_cents=hold.price_cents * len(lines))
                  if isinstance(self.payments, DemoGateway) else None)
        values = order_values(order_id=order_id, hold_id=hold_id, buyer=buyer,
                              section_id=section.id, event_date=hold.event_date,
                              unit_price_cents=hold.price_cents, quantity=len(lines),
                              intent=intent, demo=self.payments.demo)
        async with self.db.connect() as conn:
            number = await insert_order(conn, values, lines)
        if number is None:
            return None  # a retry, or a concurrent checkout of the same hold
        log.info("order created", extra={"order_id": str(order_id), "order_number": number})
        return Order(**values, order_number=number, currency="usd")

    async def confirm(self, order_id: uuid.UUID, user_id: str | None) -> Confirmed:
        """The fan says they paid: with Stripe the intent is looked up; then the order is
        finalised in this request, batched with the other confirms of this moment, so the
        seats are sold and the tickets written when it returns. In demo mode nothing is read
        first: the batch checks the order is the fan's, on the locked row (under an on-sale's
        load, a read of its own cost a confirm as much as its share of the batch)."""
        if not self.payments.demo:
            async with self.db.connect() as conn:
                order = await payment_of(conn, order_id)
            if order is None:
                raise errors.OrderNotFound()
            finalize.check_owner(order.user_id, user_id, "order")
            if order.payment_intent_id is None:
                raise errors.CheckoutConflict("This order has no payment yet; check out first.")
            intent = await self.stripe_call(self.payments.retrieve,
                                            intent_id=order.payment_intent_id)
            if intent.status != "succeeded":
                raise errors.PaymentNotCompleted(status=intent.status)
        outcome = await self.confirms.submit(finalize.Payment(
            order_id, accepted_at=time.time(), confirmer=finalize.Confirmer(user_id)))
        if isinstance(outcome, Exception):
            raise outcome
        return Confirmed(outcome.order_number, outcome.status)

    async def payment_succeeded(self, order_id: uuid.UUID, intent_id: str,
                                event: finalize.StripeEventRef) -> bool:
        """Stripe says the order's intent succeeded: its seats are sold now, then the
        payment is queued for finalisation. False if the order or intent is not ours."""
        found = await self._paying(order_id, intent_id)
        if found is None:
            return False
        await self._secure_seats(order_id, found)
        await queued(self.payments_queue.submit(
            finalize.Payment(order_id, event, accepted_at=time.time())), self.queue_outage)
        return True

    async def payment_failed(self, order_id: uuid.UUID, intent_id: str,
                             event: finalize.StripeEventRef, reason: str) -> bool:
        """Stripe says the order's intent failed or was canceled: queued, to fail the order
        and release its hold. False if the order or intent is not ours."""
        if await self._paying(order_id, intent_id) is None:
            return False
        await queued(anyio.to_thread.run_sync(
            self.enqueue_fail, order_id, event.id, event.type, reason), self.queue_outage)
        return True

    async def _paying(self, order_id: uuid.UUID, intent_id: str) -> uuid.UUID | None:
        """The hold of the order that `intent_id` pays; None if it pays none of ours."""
        async with self.db.connect() as conn:
            found = await payment_of(conn, order_id)
        if found is None or found.payment_intent_id != intent_id:
            log.warning("webhook for an unknown order or intent", extra={"intent": intent_id})
            return None
        logs.bind(hold_id=str(found.hold_id))
        return found.hold_id

    async def _secure_seats(self, order_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        """Sell the paid order its hold's seats now, before any queue: from here a backlog
        can delay its tickets, never cost its seats. A hold that had already ended is for
        finalisation to settle (same seats, others, or a refund)."""
        block = await self.holds.locate(str(hold_id))
        sale = await sales.secure(self.holds.client, block, order_id=str(order_id),
                                  hold_id=str(hold_id), via=self.holds.pipeline)
        log.info("seats secured" if sale else "the hold had ended; finalisation decides",
                 extra={"mode": sale.mode if sale else "none",
                        "seats": sale.seats if sale else []})

    async def stripe_call(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """A call to the payment provider, in a thread, at most STRIPE_MAX_CONCURRENCY at
        once per process: a slow Stripe then costs its own callers time, not every other
        request the threads and database connections they would wait for. Down or
        overloaded: 503."""
        try:
            async with asyncio.timeout(STRIPE_QUEUE_SECONDS):
                await self.stripe_slots.acquire()
        except TimeoutError:
            raise errors.ServiceUnavailable(
                "The payment provider is busy; please retry.") from None
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, **kwargs))
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            log.warning("payment provider unavailable", extra={"error": type(exc).__name__})
            raise errors.ServiceUnavailable(
                "The payment provider is not answering; please retry.") from exc
        except stripe.StripeError as exc:  # a refused key or request: ours to fix, not the fan's
            log.error("payment provider refused the request",
                      extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            raise errors.ServiceUnavailable(
                "Payments are unavailable at the moment; please retry later.") from exc
        finally:
            self.stripe_slots.release()


async def queued(enqueue: Awaitable[Any], outage: Outage) -> None:
    """Stripe retries on an error status: 503 when the work was not queued. The queue's
    Redis not answering is an outage (two lines, however many webhooks fail); anything else
    is logged as itself."""
    try:
        await enqueue
    except (RedisConnectionError, RedisTimeoutError) as exc:
        outage.failed(exc)
        raise errors.ServiceUnavailable() from exc
    except Exception as exc:
        log.warning("could not enqueue webhook work", extra={"error": repr(exc)})
        raise errors.ServiceUnavailable() from exc
