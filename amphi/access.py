"""Who may pass which gate, and when: the pure rules a scan is judged by.

An amphitheatre ticket opens the amphitheatre gate on its event date, and the festival
gates on that same date (festival access). A complimentary festival day pass opens the
festival gates on its date and never the amphitheatre gate. Voided or refunded tickets,
other dates, unknown codes, and the codes a ticket had before it was transferred are
refused. A second admission at the same gate on the same day is refused unless that gate
allows re-entry. "Today" is the venue's date.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime


class Gate(enum.StrEnum):
    AMPHITHEATER = "amphitheater"
    FESTIVAL = "festival"


@dataclass(frozen=True, slots=True)
class TicketFacts:
    kind: str  # "amphitheater" | "festival_day"
    status: str  # "issued" | "void" | "refunded"
    event_date: date
    replaced: bool = False  # the code shown is one the ticket had before a transfer


@dataclass(frozen=True, slots=True)
class Admission:
    """An earlier admission of the same ticket at the same gate on the same venue day."""

    at: datetime  # venue-local time
    device_id: str


@dataclass(frozen=True, slots=True)
class Decision:
    can_enter: bool
    code: str  # stable, for logs and metrics: admitted, already_scanned, wrong_date, ...
    reason: str  # what the gate attendant reads
    festival_access_granted: bool = False


def _day(d: date) -> str:
    return d.strftime("%A, %B %-d, %Y")


def judge(ticket: TicketFacts | None, gate: Gate, today: date,
          earlier: Admission | None = None, *, reentry: bool = False) -> Decision:
    if ticket is None:
        return Decision(False, "unknown_ticket",
                        "Ticket not found. Send the guest to the box office.")
    if ticket.replaced:
        return Decision(False, "transferred",
                        "This code was replaced: the ticket was transferred. Do not admit; "
                        "its new holder has a new code.")
    if ticket.status == "void":
        return Decision(False, "voided", "This ticket has been voided.")
    if ticket.status == "refunded":
        return Decision(False, "refunded", "This ticket was refunded and is no longer valid.")
    if ticket.status != "issued":
        return Decision(False, "not_valid", f"This ticket is {ticket.status}.")
    if ticket.kind == "festival_day" and gate == Gate.AMPHITHEATER:
        return Decision(False, "wrong_gate",
                        "A festival day pass does not open the amphitheatre gate.")
    if ticket.event_date != today:
        when = "was" if ticket.event_date < today else "is"
        return Decision(False, "wrong_date",
                        f"This ticket {when} for {_day(ticket.event_date)}, not today.")
    festival_access = ticket.kind == "amphitheater" and gate == Gate.FESTIVAL
    if earlier is not None and not reentry:
        device = f" (device {earlier.device_id})" if earlier.device_id else ""
        return Decision(False, "already_scanned",
                        f"Already scanned at the {gate.value} gate at "
                        f"{earlier.at.strftime('%-I:%M %p')}{device}.")
    if festival_access:
        return Decision(True, "admitted",
                        "Admitted: amphitheatre ticket, festival access for today.", True)
    return Decision(True, "admitted", "Admitted.")
