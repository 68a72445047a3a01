"""Order finalisation: a succeeded payment becomes sold seats, tickets and festival passes,
exactly once, whatever runs it (webhook job, demo confirm, manual confirm, reconcile) and
however often. Each step is safe to repeat:

1. lock the order; a final order only records the event. Pending becomes paid.
2. Redis: `sell_hold.lua` sells the order its seats. It is idempotent per order, so a
   rerun gets the same seats. If the hold ended, it re-takes the same seats or the best
   available; if none are left, the order needs a refund.
3. lock the order again; unless it was completed meanwhile, write the tickets and comp
   passes and mark it completed, in one transaction with the Stripe event id.
4. after the commit: enqueue the email, or issue the refund.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy.orm import Session, sessionmaker

from amphi import errors, logs
from amphi.payments import PaymentGateway
from amphi.signing import Signer
from engine import sales
from engine.geometry import Geometry
from engine.keys import BlockKeys
from ledger.models import Order, OrderStatus, SectionType
from ledger.orders import OPEN, lock_order, record_stripe_event
from ledger.tickets import IssuedSeat, issue_tickets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    redis: redis.Redis
    sessions: sessionmaker
    payments: PaymentGateway
    enqueue_email: Callable[[uuid.UUID], None]
    signer: Signer


@dataclass(frozen=True, slots=True)
class StripeEventRef:
    id: str
    type: str


def _now() -> datetime:
    return datetime.now(UTC)


def _record(session: Session, order: Order, event: StripeEventRef | None) -> None:
    if event is not None:
        record_stripe_event(session, event_id=event.id, event_type=event.type,
                            payment_intent_id=order.payment_intent_id, order_id=order.id)


def _seats(order: Order, sale: sales.Sale) -> list[IssuedSeat]:
    section = order.section
    if section.section_type != SectionType.RESERVED:
        return [IssuedSeat(None, None, None)] * order.quantity
    geometry = Geometry(section.rows or 1, section.seats_per_row or 1)
    places = [(i, geometry.seat(i)) for i in sale.seats]
    return [IssuedSeat(i, place.row, place.seat) for i, place in places]


def finalize_order(deps: Deps, order_id: uuid.UUID, *,
                   event: StripeEventRef | None = None) -> OrderStatus:
    """Issue the tickets of a paid order (the caller has verified the payment)."""
    with logs.bound(order_id=str(order_id)):
        with deps.sessions.begin() as session:
            order = lock_order(session, order_id)
            if order is None:
                raise errors.OrderNotFound()
            if order.status not in OPEN:
                _record(session, order, event)
                status = order.status
            else:
                if order.status != OrderStatus.PAID:
                    order.status, order.paid_at = OrderStatus.PAID, _now()
                status = OrderStatus.PAID
            block = BlockKeys(order.event_date, order.section.slug)
            hold_id, quantity = str(order.hold_id), order.quantity
            preferred = [ln.seat_index for ln in order.lines if ln.seat_index is not None]
        if status == OrderStatus.REFUND_REQUIRED:
            return _refund(deps, order_id)
        if status != OrderStatus.PAID:
            return status

        with logs.bound(hold_id=hold_id):
            sale = sales.sell(deps.redis, block, order_id=str(order_id), hold_id=hold_id,
                              quantity=quantity, preferred=preferred)
            with deps.sessions.begin() as session:
                order = lock_order(session, order_id)
                assert order is not None
                _record(session, order, event)
                if order.status not in OPEN:
                    return order.status
                if sale is None:
                    order.status = OrderStatus.REFUND_REQUIRED
                    order.failure_reason = "The section had no seats left when the payment arrived."
                else:
                    seats = _seats(order, sale)
                    for line, seat in zip(order.lines, seats, strict=True):
                        line.seat_index, line.row, line.seat = seat.seat_index, seat.row, seat.seat
                    issued = issue_tickets(session, order, order.section, seats, deps.signer)
                    order.status, order.completed_at = OrderStatus.COMPLETED, _now()
            if sale is None:
                log.warning("no seats left for a paid order; refund required")
                return _refund(deps, order_id)
            log.info("tickets issued", extra={"mode": sale.mode, "tickets": len(issued),
                                              "seats": sale.seats})
            deps.enqueue_email(order_id)
            return OrderStatus.COMPLETED


def _refund(deps: Deps, order_id: uuid.UUID) -> OrderStatus:
    """Refund a paid order that could not be seated (Stripe); demo mode leaves it marked."""
    with deps.sessions.begin() as session:
        order = session.get(Order, order_id)
        assert order is not None
        intent_id = order.payment_intent_id
    if deps.payments.demo or not intent_id:
        return OrderStatus.REFUND_REQUIRED
    refund_id = deps.payments.refund(intent_id, order_id=str(order_id))
    with deps.sessions.begin() as session:
        order = lock_order(session, order_id)
        assert order is not None
        if order.status == OrderStatus.REFUND_REQUIRED:
            order.status = OrderStatus.REFUNDED
            order.failure_reason += f" Refunded ({refund_id})."
    log.info("order refunded", extra={"order_id": str(order_id), "refund_id": refund_id})
    return OrderStatus.REFUNDED


def fail_order(deps: Deps, order_id: uuid.UUID, *, event: StripeEventRef | None = None,
               reason: str = "The payment failed.") -> OrderStatus:
    """A failed or canceled payment: the pending order fails and its hold is released."""
    with logs.bound(order_id=str(order_id)), deps.sessions.begin() as session:
        order = lock_order(session, order_id)
        if order is None:
            raise errors.OrderNotFound()
        _record(session, order, event)
        if order.status != OrderStatus.PENDING:
            return order.status
        order.status, order.failure_reason = OrderStatus.FAILED, reason
        block = BlockKeys(order.event_date, order.section.slug)
        hold_id = str(order.hold_id)
    released = sales.release_for_order(deps.redis, block, hold_id)
    log.info("order failed", extra={"order_id": str(order_id), "hold_id": hold_id,
                                    "hold_released": released})
    return OrderStatus.FAILED
