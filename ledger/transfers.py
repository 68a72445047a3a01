"""Where a ticket changes hands: its owner gives an amphitheatre ticket, with its festival
pass, to someone else by email. Both get new codes and QR payloads of a new version, so
that the codes the giver had stop opening any gate; the transfer is logged. Never commits.

The two tickets are locked as a scan locks one (ledger/scans.py), so a transfer and a scan
of the same ticket at the same moment queue: a ticket admitted at a gate cannot be given
away, and a code given away is not admitted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from amphi import errors
from amphi.signing import Signer
from ledger.models import Scan, Ticket, TicketKind, TicketStatus, TicketTransfer
from ledger.tickets import new_code, signed


@dataclass(frozen=True, slots=True)
class Giver:
    """Who gives the ticket away: it must be theirs as `my-tickets` shows it (bought
    signed in, or as a guest with the same email)."""
    user_id: str
    email: str

    def owns(self, ticket: Ticket) -> bool:
        if ticket.owner_user_id is not None:
            return ticket.owner_user_id == self.user_id
        return bool(self.email) and ticket.owner_email.lower() == self.email.lower()


def _locked(session: Session, where: ColumnElement[bool]) -> Ticket | None:
    return session.scalar(select(Ticket).where(where).with_for_update())


def _used(session: Session, ticket_ids: list[uuid.UUID]) -> bool:
    return bool(session.scalar(select(exists().where(
        Scan.ticket_id.in_(ticket_ids), Scan.admitted))))


def closes_at(event_date: date, *, hours_before: int, tz: str) -> datetime:
    """When transfers of a date's tickets close: `hours_before` the day begins at the venue."""
    return datetime.combine(event_date, time(0), ZoneInfo(tz)) - timedelta(hours=hours_before)


def transfer_ticket(session: Session, ticket_id: uuid.UUID, *, giver: Giver, to_email: str,
                    signer: Signer, now: datetime, close_hours: int,
                    tz: str) -> TicketTransfer:
    """Give the amphitheatre ticket `ticket_id` (and its pass) to `to_email`, unless its
    transfers have closed (`closes_at`)."""
    ticket = _locked(session, Ticket.id == ticket_id)
    if ticket is None or ticket.kind != TicketKind.AMPHITHEATER:
        raise errors.TicketNotFound(
            "No such amphitheatre ticket (a festival pass goes with its ticket).")
    if not giver.owns(ticket):
        raise errors.Forbidden("This ticket belongs to another account.")
    festival_pass = _locked(session, Ticket.granted_by_id == ticket.id)
    if ticket.status != TicketStatus.ISSUED:
        raise errors.TransferRefused(f"This ticket is {ticket.status.value}; it cannot be "
                                     "transferred.")
    if now >= closes_at(ticket.event_date, hours_before=close_hours, tz=tz):
        raise errors.TransferRefused(
            f"Transfers for this show closed {close_hours} hours before its day began.")
    held = [t for t in (ticket, festival_pass) if t is not None]
    if _used(session, [t.id for t in held]):
        raise errors.TransferRefused("This ticket has been used at a gate; it cannot be "
                                     "transferred.")
    if to_email.lower() == ticket.owner_email.lower():
        raise errors.ValidationFailed("The ticket is already this email's.", field="email")
    transfer = TicketTransfer(
        ticket_id=ticket.id, pass_id=festival_pass.id if festival_pass else None,
        event_date=ticket.event_date, version=ticket.version + 1, old_code=ticket.code,
        old_pass_code=festival_pass.code if festival_pass else None,
        from_user_id=ticket.owner_user_id, from_email=ticket.owner_email, to_email=to_email)
    for t in held:
        t.version += 1
        t.code = new_code("AMPH" if t.kind == TicketKind.AMPHITHEATER else "FEST")
        t.qr_payload = signed(signer, t.id, t.code, t.kind, t.event_date, t.version)
        t.owner_user_id, t.owner_email = None, to_email
    if festival_pass is not None:
        festival_pass.ticket_metadata = {**festival_pass.ticket_metadata,
                                         "granted_by_amphitheater": ticket.code}
    session.add(transfer)
    session.flush()
    return transfer


def replaced_by(session: Session, old_code: str) -> Ticket | None:
    """The ticket that a code given away belonged to (the code is no one's now)."""
    row = session.execute(
        select(TicketTransfer.ticket_id, TicketTransfer.pass_id, TicketTransfer.old_code)
        .where(or_(TicketTransfer.old_code == old_code,
                   TicketTransfer.old_pass_code == old_code))
        .limit(1)).first()
    if row is None:
        return None
    return session.get(Ticket, row.ticket_id if row.old_code == old_code else row.pass_id)


def revoked_codes(session: Session, event_dates: list[date]) -> list[dict[str, str]]:
    """The codes given away for tickets of these dates: what an offline gate must refuse."""
    rows = session.execute(
        select(TicketTransfer.ticket_id, TicketTransfer.old_code, TicketTransfer.pass_id,
               TicketTransfer.old_pass_code)
        .where(TicketTransfer.event_date.in_(event_dates))
        .order_by(TicketTransfer.created_at))
    out = []
    for ticket_id, code, pass_id, pass_code in rows:
        out.append({"id": str(ticket_id), "code": code})
        if pass_id is not None and pass_code:
            out.append({"id": str(pass_id), "code": pass_code})
    return out
