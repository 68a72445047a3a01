"""The waiting room as an API process serves it: joining, polling, and the admission check in
front of holds.

Polling is cheap by construction: a fan's place is in their signed queue ticket, and the
room's state ("admitted up to", its pace) is read from Redis at most once a second per room
per process, by one call that also advances admission (lua/room_admit.lua): the pace comes
from Redis' clock, whoever asks. So 60,000 fans polling every 5 s cost each process one
Redis call a second. A lookup happens only where a fan's state changes: a pre-queue fan's
first poll after the start (their drawn position) and an admitted fan's poll (their turn's
end, for the admission token).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import date

from async_lru import alru_cache

from amphi import errors, metrics
from amphi.waiting_room import (
    Admission,
    Place,
    QueueTicket,
    RoomState,
    Tokens,
    iso_ms,
    place_of,
)
from engine import scripts
from engine import waiting_room as rooms
from engine.transport.autopipeline import AutoPipeline

log = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
JOIN_PATH = "/api/queue/join/"


@dataclass(frozen=True, slots=True)
class Status:
    event_date: date
    queue_ticket: str
    place: Place
    on_sale_ms: int
    admission_token: str | None = None
    turn_ends_ms: int | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "event_date": self.event_date.isoformat(),
            "queue_ticket": self.queue_ticket,
            "state": self.place.state,
            "position": self.place.position,
            "ahead": self.place.ahead,
            "estimated_wait_seconds": self.place.estimated_wait_seconds,
            "on_sale_at": iso_ms(self.on_sale_ms),
            "poll_after_seconds": self.place.poll_after_seconds,
        }
        if self.admission_token:
            body["admission_token"] = self.admission_token
            body["turn_ends_at"] = iso_ms(self.turn_ends_ms or 0)
        return body


class WaitingRoom:
    def __init__(self, redis: scripts.AsyncClient, tokens: Tokens, *,
                 pipeline: AutoPipeline | None = None,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.redis, self.tokens, self.cache_seconds = redis, tokens, cache_seconds
        self.pipeline = pipeline
        # async-lru, as the sections cache (api/http_cache.py): each value read at most once
        # per `cache_seconds`, concurrent misses sharing one read, failures not kept
        self._open_rooms = alru_cache(maxsize=1, ttl=cache_seconds)(self._read_open_rooms)
        self._state = alru_cache(maxsize=64, ttl=cache_seconds)(self._read_state)

    async def _read_open_rooms(self) -> dict[date, str]:
        return await rooms.open_rooms(self.redis)

    async def _read_state(self, day: date) -> RoomState | None:
        return await rooms.state(self.redis, day)

    async def state(self, day: date) -> RoomState | None:
        room: RoomState | None = await self._state(day)
        return room

    async def gates(self, day: date) -> bool:
        """Holds for `day` need an admission token (a room is open or paused for it)."""
        return day in await self._open_rooms()

    # -- fans --------------------------------------------------------------------------------
    async def join(self, day: date, identity: str) -> Status:
        outcome, number, now_ms, new = await rooms.join(self.redis, day, identity,
                                                        via=self.pipeline)
        if outcome == "closed":
            raise errors.QueueNotOpen()
        if outcome == "early":
            raise errors.QueueNotOpen(
                f"The waiting room for this date opens at {iso_ms(number)}.",
                opens_at=iso_ms(number))
        position = number if outcome == "pos" else None
        if new:
            metrics.QUEUE_JOINS.inc()
            log.info("queue joined", extra={"event_date": day.isoformat(),
                                            "identity": identity, "position": position})
        ticket = QueueTicket(day, identity, position, now_ms)
        return await self._status(ticket, self.tokens.ticket(ticket))

    async def status(self, ticket_text: str) -> Status:
        ticket = self.tokens.read_ticket(ticket_text)
        if ticket.position is None:
            room = await self.state(ticket.event_date)
            if room is not None and room.started and room.state != "closed":
                # the pre-queue has been drawn: learn this fan's position, once
                outcome, number, _, _ = await rooms.join(self.redis, ticket.event_date,
                                                         ticket.identity, via=self.pipeline)
                if outcome == "pos":
                    ticket = QueueTicket(ticket.event_date, ticket.identity, number,
                                         ticket.joined_ms)
                    ticket_text = self.tokens.ticket(ticket)
        return await self._status(ticket, ticket_text)

    async def _status(self, ticket: QueueTicket, ticket_text: str) -> Status:
        day = ticket.event_date
        room = await self.state(day)
        if room is None:
            raise errors.QueueNotOpen()
        place = place_of(ticket.position, room)
        status = Status(day, ticket_text, place, room.on_sale_ms)
        if place.state != "admitted" or ticket.position is None:
            return status
        ends = await rooms.turn_ends_ms(self.redis, day, ticket.position)
        if ends is None:
            return Status(day, ticket_text, Place("turn_ended", ticket.position, 0, None),
                          room.on_sale_ms)
        admission = Admission(day, ticket.identity, ticket.position, room.epoch, ends)
        if not ticket.admitted:  # the first poll that learns it: counted, and noted in
            # the ticket it gets back, so that later polls are not
            metrics.QUEUE_WAIT_SECONDS.observe(max(0, room.now_ms - ticket.joined_ms) / 1000)
            log.info("queue admitted", extra={"event_date": day.isoformat(),
                                              "identity": ticket.identity,
                                              "position": ticket.position})
            ticket_text = self.tokens.ticket(replace(ticket, admitted=True))
        return Status(day, ticket_text, place, room.on_sale_ms,
                      self.tokens.admission(admission), ends)

    # -- holds -------------------------------------------------------------------------------
    async def admit_hold(self, day: date, identity: str, token: str | None) -> Admission | None:
        """None: no room gates `day`. Otherwise the fan's admission, or AdmissionRequired."""
        if not await self.gates(day):
            return None
        where = {"event_date": day.isoformat(), "join": JOIN_PATH}
        if not token:
            raise errors.AdmissionRequired(**where)
        try:
            admission = self.tokens.read_admission(token, int(time.time() * 1000))
        except errors.AdmissionRequired as refused:
            raise errors.AdmissionRequired(refused.message, **where) from None
        if admission.event_date != day or admission.identity != identity:
            raise errors.AdmissionRequired(
                "This admission token is for another fan or another date.", **where)
        room = await self.state(day)
        if room is None or admission.epoch != room.epoch:
            raise errors.AdmissionRequired("This admission token has been revoked.", **where)
        if await rooms.turn_ends_ms(self.redis, day, admission.position) is None:
            raise errors.AdmissionRequired("Your turn in the waiting room has ended.",
                                           **where)
        return admission

    async def hold_made(self, admission: Admission, hold_id: str) -> None:
        await rooms.record_hold(self.redis, admission.event_date, hold_id, admission.position)
