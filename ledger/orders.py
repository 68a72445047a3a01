"""Order rows: created at checkout, locked and advanced by finalisation. Never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Sequence, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, selectinload

from ledger.models import Order, OrderLine, OrderStatus, StripeEvent

ORDER_NUMBER_SEQ = Sequence("order_number_seq", start=100001)

# Where finalisation may still move an order; the rest are final.
OPEN = (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class Buyer:
    email: str
    first_name: str = ""
    last_name: str = ""
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class LineSpec:
    seat_index: int | None
    row: str | None
    seat: int | None


def order_for_hold(session: Session, hold_id: uuid.UUID) -> Order | None:
    return session.scalar(select(Order).where(Order.hold_id == hold_id))


def create_order(
    session: Session,
    *,
    hold_id: uuid.UUID,
    buyer: Buyer,
    section_id: uuid.UUID,
    event_date: date,
    unit_price_cents: int,
    lines: list[LineSpec],
) -> Order:
    number = session.execute(ORDER_NUMBER_SEQ.next_value()).scalar_one()
    order = Order(
        order_number=f"ORD-{number}",
        hold_id=hold_id,
        user_id=buyer.user_id,
        buyer_email=buyer.email,
        buyer_first_name=buyer.first_name,
        buyer_last_name=buyer.last_name,
        section_id=section_id,
        event_date=event_date,
        quantity=len(lines),
        unit_price_cents=unit_price_cents,
        total_cents=unit_price_cents * len(lines),
        status=OrderStatus.PENDING,
        lines=[
            OrderLine(line_no=i, seat_index=ln.seat_index, row=ln.row, seat=ln.seat,
                      price_cents=unit_price_cents)
            for i, ln in enumerate(lines, start=1)
        ],
    )
    session.add(order)
    session.flush()
    return order


def lock_order(session: Session, order_id: uuid.UUID) -> Order | None:
    """The order row, locked until the transaction ends: finalisations of one order queue."""
    return session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines), selectinload(Order.section))
        .with_for_update(of=Order)
    )


def record_stripe_event(
    session: Session, *, event_id: str, event_type: str, payment_intent_id: str | None,
    order_id: uuid.UUID | None,
) -> bool:
    """Record a processed Stripe event; False if it was recorded before."""
    inserted = session.execute(
        insert(StripeEvent)
        .values(id=event_id, event_type=event_type, payment_intent_id=payment_intent_id,
                order_id=order_id)
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    ).first()
    return inserted is not None


def expire_abandoned(session: Session, *, created_before: datetime) -> int:
    """Pending orders from before `created_before` become expired: the fan walked away.
    A payment that still arrives finalises them all the same (expired is still open)."""
    result = session.execute(
        update(Order)
        .where(Order.status == OrderStatus.PENDING, Order.created_at < created_before)
        .values(status=OrderStatus.EXPIRED,
                failure_reason="No payment arrived before the hold expired.")
    )
    return result.rowcount
