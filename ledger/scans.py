"""Where a scan is judged and logged: lock the ticket, find its earlier admission at that
gate that day, apply `amphi.access.judge`, write the scan log. Never commits.

Locking the ticket row makes two devices scanning one ticket at the same instant queue:
the second sees the first's admission and is refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from amphi.access import Admission, Decision, Gate, TicketFacts, judge
from ledger.models import AmphitheaterTicket, Scan, Ticket, TicketKind
from ledger.transfers import replaced_by


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    decision: Decision
    ticket: Ticket | None
    seat: AmphitheaterTicket | None
    scan: Scan


def _ticket(session: Session, *, code: str | None, ticket_id: uuid.UUID | None) -> Ticket | None:
    query = select(Ticket).options(selectinload(Ticket.ticket_type)).with_for_update(of=Ticket)
    if ticket_id is not None:
        query = query.where(Ticket.id == ticket_id)
    else:
        query = query.where(Ticket.code == code)
    return session.scalar(query)


def seat_of(session: Session, ticket: Ticket) -> AmphitheaterTicket | None:
    column = (AmphitheaterTicket.ticket_id if ticket.kind == TicketKind.AMPHITHEATER
              else AmphitheaterTicket.festival_day_ticket_id)
    return session.scalar(select(AmphitheaterTicket).where(column == ticket.id)
                          .options(selectinload(AmphitheaterTicket.section)))


def earlier_admission(session: Session, ticket_id: uuid.UUID, gate: Gate, venue_date: date,
                      tz: str) -> Admission | None:
    """The first admission already logged at this gate on this venue day. Any one counts,
    whatever its time: clocks of devices (and of requests waiting for the lock) differ."""
    first = session.scalar(
        select(Scan)
        .where(Scan.ticket_id == ticket_id, Scan.gate == gate.value,
               Scan.venue_date == venue_date, Scan.admitted)
        .order_by(Scan.scanned_at)
        .limit(1)
    )
    if first is None:
        return None
    return Admission(first.scanned_at.astimezone(ZoneInfo(tz)), first.device_id)


def scan_ticket(
    session: Session,
    *,
    presented: str,
    code: str | None,
    ticket_id: uuid.UUID | None,
    gate: Gate,
    device_id: str,
    at: datetime,
    tz: str,
    reentry: bool,
    source: str = "online",
    refused: Decision | None = None,
    device_admitted: bool | None = None,
) -> ScanOutcome:
    """Judge and log one scan at time `at`. `refused` logs a scan already refused (a forged
    QR code) without looking anything up. `device_admitted=False` (an offline device turned
    the guest away) is logged as no admission, whatever the ledger would have said."""
    venue_date = at.astimezone(ZoneInfo(tz)).date()
    ticket = seat = None
    if refused is not None:
        decision = refused
    else:
        ticket = _ticket(session, code=code, ticket_id=ticket_id)
        # a signed payload names its ticket and the code it had when it was signed
        replaced = ticket is not None and code is not None and ticket.code != code
        if ticket is None and code is not None:
            ticket = replaced_by(session, code)
            replaced = ticket is not None
        facts = None
        earlier = None
        if ticket is not None:
            facts = TicketFacts(ticket.kind.value, ticket.status.value, ticket.event_date,
                                replaced)
            earlier = earlier_admission(session, ticket.id, gate, venue_date, tz)
            seat = seat_of(session, ticket)
        decision = judge(facts, gate, venue_date, earlier, reentry=reentry)
        if device_admitted is False and decision.can_enter:
            decision = Decision(False, "refused_by_device",
                                "The gate device refused this ticket while offline.")
    scan = Scan(ticket_id=ticket.id if ticket else None, code=presented[:64], gate=gate.value,
                device_id=device_id, scanned_at=at, venue_date=venue_date,
                admitted=decision.can_enter, result=decision.code, reason=decision.reason[:300],
                festival_access_granted=decision.festival_access_granted, source=source)
    session.add(scan)
    session.flush()
    return ScanOutcome(decision, ticket, seat, scan)


def bundle_tickets(session: Session, event_date: date, gate: Gate) -> list[Ticket]:
    """The tickets a gate may see on `event_date`, whatever their status."""
    kinds = [TicketKind.AMPHITHEATER]
    if gate == Gate.FESTIVAL:
        kinds.append(TicketKind.FESTIVAL_DAY)
    return list(session.scalars(
        select(Ticket).where(Ticket.event_date == event_date, Ticket.kind.in_(kinds))
        .order_by(Ticket.code)
    ))
