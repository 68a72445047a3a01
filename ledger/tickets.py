"""Where a ticket is written: amphitheatre tickets, their main tickets (what a gate scans)
and one complimentary festival day pass for each. Never commits."""

from __future__ import annotations

import secrets
import uuid
from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, joinedload, selectinload

from amphi.geometry import SeatLine
from amphi.signing import Signer, ticket_claims
from ledger.models import (
    AmphitheaterTicket,
    Order,
    Section,
    Ticket,
    TicketKind,
    TicketStatus,
    TicketType,
)
from ledger.venue_seed import VENUE_NAME

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a gate
# A random byte -> a symbol: 32 symbols divide 256 byte values, 8 each, so every symbol is
# equally likely. One token_bytes call a code instead of ten secrets.choice calls: 1.4
# against 24 us, two codes a seat (docs/changelog.md, 2026-12-06).
CODE_SYMBOLS = bytes.maketrans(bytes(range(256)), _CODE_ALPHABET.encode() * 8)


def new_code(prefix: str) -> str:
    return f"{prefix}-" + secrets.token_bytes(10).translate(CODE_SYMBOLS).decode()


def amphitheater_type_name(event_date: date, section_name: str) -> str:
    return f"{VENUE_NAME} - {event_date.strftime('%B %-d, %Y')} - {section_name}"


def festival_type_name(event_date: date) -> str:
    return f"Festival Day Pass - {event_date.strftime('%A, %B %-d, %Y')} (Complimentary)"


def _ticket_types(session: Session, wanted: dict[str, dict[str, Any]]) -> dict[str, uuid.UUID]:
    """slug -> id of each wanted ticket type, created if missing: one query once they
    exist. Two concurrent finalisations cannot both create one (ON CONFLICT)."""
    def found() -> dict[str, uuid.UUID]:
        rows = session.execute(
            select(TicketType.slug, TicketType.id).where(TicketType.slug.in_(wanted)))
        return {slug: type_id for slug, type_id in rows}

    ids = found()
    missing = [{"id": uuid.uuid4(), "slug": slug, "is_active": True, **values}
               for slug, values in wanted.items() if slug not in ids]
    if missing:
        session.execute(insert(TicketType).values(missing)
                        .on_conflict_do_nothing(index_elements=[TicketType.slug]))
        ids = found()
    return ids


def _types_of(order: Order, section: Section) -> dict[str, dict[str, Any]]:
    day = order.event_date
    return {
        f"amph-{day.isoformat()}-{section.slug}": {
            "name": amphitheater_type_name(day, section.name), "kind": TicketKind.AMPHITHEATER,
            "event_date": day, "price_cents": order.unit_price_cents, "is_comp": False},
        f"festival-day-{day.isoformat()}-comp": {
            "name": festival_type_name(day), "kind": TicketKind.FESTIVAL_DAY,
            "event_date": day, "price_cents": 0, "is_comp": True},
    }


def signed(signer: Signer, ticket_id: uuid.UUID, code: str, kind: TicketKind,
           event_date: date, version: int = 1) -> str:
    """A ticket's QR payload."""
    return signer.sign(ticket_claims(code=code, ticket_id=str(ticket_id), kind=kind.value,
                                     event_date=event_date.isoformat(), version=version))


def _ticket_row(signer: Signer, order: Order, kind: TicketKind, type_id: uuid.UUID, *,
                price_cents: int, granted_by: uuid.UUID | None,
                metadata: dict[str, Any]) -> dict[str, Any]:
    ticket_id = uuid.uuid4()
    code = new_code("AMPH" if kind == TicketKind.AMPHITHEATER else "FEST")
    return {"id": ticket_id, "code": code, "kind": kind, "ticket_type_id": type_id,
            "order_id": order.id, "owner_user_id": order.user_id,
            "owner_email": order.buyer_email, "event_date": order.event_date,
            "status": TicketStatus.ISSUED, "price_cents": price_cents,
            "is_comp": granted_by is not None, "granted_by_id": granted_by,
            "metadata": metadata,
            "qr_payload": signed(signer, ticket_id, code, kind, order.event_date)}


def issue_tickets(session: Session, orders: list[tuple[Order, list[SeatLine]]],
                  signer: Signer) -> int:
    """One amphitheatre ticket a seat, each with its comp festival day pass, for every
    (order, seats); every QR payload is signed so gates can verify it offline. Three
    statements for the whole batch (each order needs its `section` loaded). Returns the
    number of amphitheatre tickets."""
    if not orders:
        return 0
    wanted: dict[str, dict[str, Any]] = {}
    for order, _ in orders:
        wanted |= _types_of(order, order.section)
    type_ids = _ticket_types(session, wanted)
    mains: list[dict[str, Any]] = []
    passes: list[dict[str, Any]] = []
    amph: list[dict[str, Any]] = []
    for order, seats in orders:
        section, day = order.section, order.event_date.isoformat()
        amph_type, fest_type = (type_ids[slug] for slug in _types_of(order, section))
        for line_no, place in enumerate(seats, start=1):
            main = _ticket_row(
                signer, order, TicketKind.AMPHITHEATER, amph_type,
                price_cents=order.unit_price_cents, granted_by=None,
                metadata={"amphitheater": True, "section": section.name,
                          "section_id": str(section.id), "row": place.row, "seat": place.seat,
                          "event_date": day, "order_number": order.order_number})
            festival = _ticket_row(
                signer, order, TicketKind.FESTIVAL_DAY, fest_type, price_cents=0,
                granted_by=main["id"],
                metadata={"granted_by_amphitheater": main["code"], "event_date": day})
            mains.append(main)
            passes.append(festival)
            amph.append({"id": uuid.uuid4(), "ticket_id": main["id"],
                         "festival_day_ticket_id": festival["id"], "order_id": order.id,
                         "line_no": line_no, "event_date": order.event_date,
                         "section_id": section.id, "seat_index": place.seat_index,
                         "row": place.row, "seat": place.seat,
                         "price_paid_cents": order.unit_price_cents,
                         "status": TicketStatus.ISSUED, "includes_festival_access": True})
    # Core inserts of the tables (the ORM's bulk insert costs more per row than the rest of
    # finalisation). One statement of many rows: a pass's granted_by row comes earlier in it,
    # and PostgreSQL checks the foreign key at the statement's end.
    # a mapped class's __table__ is typed FromClause (it may map a join); these are Tables
    session.execute(insert(cast(Table, Ticket.__table__)), mains + passes)
    session.execute(insert(cast(Table, AmphitheaterTicket.__table__)), amph)
    return len(amph)


def owned_by(user_id: str, email: str) -> ColumnElement[bool]:
    """A user's tickets: bought signed in, or as a guest with the same email."""
    clauses = [Ticket.owner_user_id == user_id]
    if email:
        guest = Ticket.owner_user_id.is_(None)
        clauses.append(guest & (func.lower(Ticket.owner_email) == email.lower()))
    return or_(*clauses)


def amphitheater_tickets_of(session: Session, user_id: str,
                            email: str) -> list[AmphitheaterTicket]:
    return list(session.scalars(
        select(AmphitheaterTicket)
        .join(AmphitheaterTicket.ticket)
        .where(owned_by(user_id, email))
        .options(selectinload(AmphitheaterTicket.ticket),
                 selectinload(AmphitheaterTicket.festival_day_ticket),
                 selectinload(AmphitheaterTicket.section))
        .order_by(AmphitheaterTicket.event_date, AmphitheaterTicket.created_at,
                  AmphitheaterTicket.line_no)
    ))


def tickets_of(session: Session, user_id: str, email: str) -> list[Ticket]:
    return list(session.scalars(
        select(Ticket).where(owned_by(user_id, email))
        .options(selectinload(Ticket.ticket_type))
        .order_by(Ticket.event_date, Ticket.created_at, Ticket.kind)
    ))


def tickets_of_orders(session: Session, order_ids: list[uuid.UUID]
                      ) -> dict[uuid.UUID, list[AmphitheaterTicket]]:
    """Each order's tickets by line, with their main ticket, pass and section: one query
    (each of those is one row per ticket)."""
    found: dict[uuid.UUID, list[AmphitheaterTicket]] = {i: [] for i in order_ids}
    for ticket in session.scalars(
        select(AmphitheaterTicket)
        .where(AmphitheaterTicket.order_id.in_(order_ids))
        .options(joinedload(AmphitheaterTicket.ticket),
                 joinedload(AmphitheaterTicket.festival_day_ticket),
                 joinedload(AmphitheaterTicket.section))
        .order_by(AmphitheaterTicket.order_id, AmphitheaterTicket.line_no)
    ):
        found[ticket.order_id].append(ticket)
    return found

