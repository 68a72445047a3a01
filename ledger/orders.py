"""Order rows: created at checkout, locked and advanced by finalisation. Never commits."""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    CursorResult,
    Integer,
    Sequence,
    String,
    Table,
    Uuid,
    bindparam,
    cast,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, joinedload

from amphi.geometry import SeatLine
from amphi.payments import Intent
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


def order_for_hold(session: Session, hold_id: uuid.UUID) -> Order | None:
    return session.scalar(select(Order).where(Order.hold_id == hold_id))


def next_order_number(session: Session) -> str:
    return f"ORD-{session.execute(ORDER_NUMBER_SEQ.next_value()).scalar_one()}"


def order_values(*, order_id: uuid.UUID, hold_id: uuid.UUID, buyer: Buyer,
                 section_id: uuid.UUID, event_date: date, unit_price_cents: int,
                 quantity: int, intent: Intent | None = None, demo: bool = False,
                 ) -> dict[str, Any]:
    """A new pending order's columns but its number (its payment intent too when it is
    already known)."""
    return {"id": order_id, "hold_id": hold_id,
            "user_id": buyer.user_id, "buyer_email": buyer.email,
            "buyer_first_name": buyer.first_name, "buyer_last_name": buyer.last_name,
            "section_id": section_id, "event_date": event_date, "quantity": quantity,
            "unit_price_cents": unit_price_cents, "total_cents": unit_price_cents * quantity,
            "status": OrderStatus.PENDING,
            "payment_intent_id": intent.id if intent else None,
            "client_secret": intent.client_secret if intent else None, "demo": demo}


def _insert_order_statement() -> Any:
    """INSERT the order (numbered from the sequence) unless its hold has one, and its lines
    from arrays, in one statement. Built once: SQLAlchemy then reuses its compiled form
    without rebuilding the statement and its cache key on every checkout."""
    # a mapped class's __table__ is typed FromClause (it may map a join); these are Tables
    orders = typing.cast(Table, Order.__table__)
    order_lines = typing.cast(Table, OrderLine.__table__)
    order_columns = order_values(
        order_id=uuid.UUID(int=0), hold_id=uuid.UUID(int=0), buyer=Buyer(""),
        section_id=uuid.UUID(int=0), event_date=date.min, unit_price_cents=0, quantity=0)
    new_order = (
        insert(orders)
        .values({name: bindparam(name, type_=orders.c[name].type) for name in order_columns}
                | {"order_number": literal("ORD-") + cast(ORDER_NUMBER_SEQ.next_value(), String)})
        .on_conflict_do_nothing(index_elements=[orders.c.hold_id])
        .returning(orders.c.id, orders.c.order_number)
        .cte("new_order"))
    line_columns = {"id": Uuid, "line_no": Integer, "seat_index": Integer, "row": String,
                    "seat": Integer}
    line = func.unnest(*(bindparam(f"line_{name}", type_=ARRAY(item))
                         for name, item in line_columns.items())
                       ).table_valued(*line_columns, name="line").render_derived()
    new_lines = insert(order_lines).from_select(
        [*line_columns, "order_id", "price_cents"],
        select(*(line.c[name] for name in line_columns), new_order.c.id,
               bindparam("unit_price_cents", type_=Integer))
        .select_from(new_order).join(line, true())).cte("new_lines")
    return select(new_order.c.order_number).add_cte(new_lines)


_INSERT_ORDER = _insert_order_statement()


async def insert_order(conn: AsyncConnection, values: dict[str, Any],
                       lines: list[SeatLine]) -> str | None:
    """Insert an order (`order_values`), its order number and its lines with one statement:
    checkout's, the on-sale's busiest write (as a transaction of four statements through the
    async driver it cost more CPU than the rest of the checkout). Atomic on its own, so
    `conn` may be in autocommit. Returns the order number; None, with nothing written, if
    its hold has an order already."""
    return await conn.scalar(_INSERT_ORDER, values | {
        "line_id": [uuid.uuid4() for _ in lines],
        "line_line_no": list(range(1, len(lines) + 1)),
        "line_seat_index": [ln.seat_index for ln in lines],
        "line_row": [ln.row for ln in lines],
        "line_seat": [ln.seat for ln in lines]})



def create_order(
    session: Session,
    *,
    order_id: uuid.UUID,
    order_number: str,
    hold_id: uuid.UUID,
    buyer: Buyer,
    section_id: uuid.UUID,
    event_date: date,
    unit_price_cents: int,
    lines: list[SeatLine],
    intent: Intent | None = None,
    demo: bool = False,
) -> Order:
    """`insert_order` through the ORM, for callers that hold a Session (one order per hold:
    a second raises IntegrityError at flush)."""
    order = Order(
        order_number=order_number,
        **order_values(order_id=order_id, hold_id=hold_id,
                       buyer=buyer, section_id=section_id, event_date=event_date,
                       unit_price_cents=unit_price_cents, quantity=len(lines), intent=intent,
                       demo=demo),
        lines=[OrderLine(line_no=i, seat_index=ln.seat_index, row=ln.row, seat=ln.seat,
                         price_cents=unit_price_cents)
               for i, ln in enumerate(lines, start=1)],
    )
    session.add(order)
    session.flush()
    return order


async def attach_intent(session: AsyncSession, order_id: uuid.UUID, intent: Intent,
                        demo: bool) -> bool:
    """Give a pending order its payment intent unless another checkout already did (no lock
    is held while Stripe is called: concurrent checkouts race here, the first one wins)."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.payment_intent_id.is_(None))
        .values(payment_intent_id=intent.id, client_secret=intent.client_secret, demo=demo)
    )
    # an UPDATE's result is a CursorResult (rowcount); Session.execute is typed for any statement
    return bool(typing.cast(CursorResult[Any], result).rowcount)


def lock_order(session: Session, order_id: uuid.UUID) -> Order | None:
    """The order row, locked until the transaction ends: finalisations of one order queue."""
    found = lock_orders(session, [order_id])
    return found[0] if found else None


def lock_orders(session: Session, order_ids: list[uuid.UUID]) -> list[Order]:
    """The orders, with their lines and section, locked until the transaction ends. Locked in
    id order, so two transactions locking overlapping sets wait for each other instead of
    deadlocking."""
    # one query: the lines joined in (FOR UPDATE OF orders locks only the orders' rows)
    return list(session.scalars(
        select(Order)
        .where(Order.id.in_(order_ids))
        .order_by(Order.id)
        .options(joinedload(Order.lines), joinedload(Order.section))
        .with_for_update(of=Order)
    ).unique())


@dataclass(frozen=True, slots=True)
class PaymentOf:
    """An order as a payment names it: the intent it expects, its hold, its number and the
    account that owns it."""
    payment_intent_id: str | None
    hold_id: uuid.UUID
    order_number: str
    user_id: str | None


async def payment_of(conn: AsyncConnection, order_id: uuid.UUID) -> PaymentOf | None:
    """A primary-key read of four columns: the webhook's and the confirm's ledger query."""
    row = (await conn.execute(
        select(Order.payment_intent_id, Order.hold_id, Order.order_number, Order.user_id)
        .where(Order.id == order_id))).first()
    return PaymentOf(*row) if row else None


@dataclass(frozen=True, slots=True)
class EventRecord:
    event_id: str
    event_type: str
    payment_intent_id: str | None
    order_id: uuid.UUID | None


def record_stripe_event(
    session: Session, *, event_id: str, event_type: str, payment_intent_id: str | None,
    order_id: uuid.UUID | None,
) -> bool:
    """Record a processed Stripe event; False if it was recorded before."""
    return bool(record_stripe_events(
        session, [EventRecord(event_id, event_type, payment_intent_id, order_id)]))


def record_stripe_events(session: Session, events: list[EventRecord]) -> int:
    """Record processed Stripe events in one statement; how many were new."""
    if not events:
        return 0
    inserted = session.execute(
        insert(StripeEvent)
        .values([{"id": e.event_id, "event_type": e.event_type,
                  "payment_intent_id": e.payment_intent_id, "order_id": e.order_id}
                 for e in events])
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    ).all()
    return len(inserted)


def expire_abandoned(session: Session, *, created_before: datetime) -> int:
    """Pending orders from before `created_before` become expired: the fan walked away.
    A payment that still arrives finalises them all the same (expired is still open)."""
    result = session.execute(
        update(Order)
        .where(Order.status == OrderStatus.PENDING, Order.created_at < created_before)
        .values(status=OrderStatus.EXPIRED,
                failure_reason="No payment arrived before the hold expired.")
    )
    # an UPDATE's result is a CursorResult (rowcount); Session.execute is typed for any statement
    return typing.cast(CursorResult[Any], result).rowcount
