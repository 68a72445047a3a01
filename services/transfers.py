"""Ticket transfer: a fan gives an amphitheatre ticket (with its festival pass) to someone
else by email (ledger/transfers.py does it in the ledger); the recipient's email is queued
in the same transaction, so that a transfer is never left without it."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from amphi.settings import Settings
from amphi.signing import Signer
from ledger.models import TicketTransfer
from ledger.transfers import Giver, transfer_ticket
from services import queueing

log = logging.getLogger(__name__)


def transfer(sessions: sessionmaker[Session], queue: Queue, signer: Signer,
             settings: Settings, ticket_id: uuid.UUID, *, giver: Giver, to_email: str,
             now: datetime) -> TicketTransfer:
    """Blocking (the API runs it in a thread). Raises the domain error that refuses it."""
    with sessions.begin() as session:
        done = transfer_ticket(session, ticket_id, giver=giver, to_email=to_email,
                               signer=signer, now=now,
                               close_hours=settings.transfer_close_hours,
                               tz=settings.venue_timezone)
        # queued before the commit: a failure to queue rolls the transfer back
        queueing.enqueue_transfer_email(queue, done.id)
    log.info("ticket transferred", extra={
        "transfer_id": str(done.id), "ticket_id": str(done.ticket_id),
        "pass_id": str(done.pass_id), "version": done.version,
        "from_user_id": giver.user_id})
    return done  # readable after the commit (the sessions do not expire on commit)
