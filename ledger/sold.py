"""The ledger's side of reconcile: what is sold, which orders are settled or stuck."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import AmphitheaterTicket, Order, OrderStatus, Section, TicketStatus

# Final for seats: the tickets (or their absence) are the truth, not Redis's sale record.
SETTLED = (OrderStatus.COMPLETED, OrderStatus.REFUND_REQUIRED, OrderStatus.REFUNDED)


def live_seats(session: Session, event_date: date, section_slug: str) -> list[int | None]:
    """The seat index of each live ticket of one block (None for general admission)."""
    return list(session.scalars(
        select(AmphitheaterTicket.seat_index)
        .join(Section, Section.id == AmphitheaterTicket.section_id)
        .where(AmphitheaterTicket.status == TicketStatus.ISSUED,
               AmphitheaterTicket.event_date == event_date, Section.slug == section_slug)
    ))


def settled(session: Session, event_date: date, section_slug: str) -> set[str]:
    """Ids of the block's orders whose seats the ledger has settled (tickets or none)."""
    found = session.scalars(
        select(Order.id).join(Section, Section.id == Order.section_id)
        .where(Order.event_date == event_date, Section.slug == section_slug,
               Order.status.in_(SETTLED))
    )
    return {str(i) for i in found}


def stuck_paid(session: Session, *, paid_before: datetime) -> list[Order]:
    """Orders paid before `paid_before` that still have no tickets: finalisation failed."""
    return list(session.scalars(
        select(Order).where(Order.status == OrderStatus.PAID, Order.paid_at < paid_before)
        .order_by(Order.paid_at)
    ))


def statuses(session: Session, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, OrderStatus]:
    ids = list(order_ids)
    if not ids:
        return {}
    return dict(session.execute(select(Order.id, Order.status).where(Order.id.in_(ids))).all())
