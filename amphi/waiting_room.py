"""The waiting room's rules, without I/O: a room's state as Redis reports it, a fan's place
and wait, and the two signed tokens.

A **queue ticket** carries a fan's place, fixed once at join: their position, or none yet
for a fan in the pre-queue (drawn at the on-sale start). Polling with it costs no lookup:
only "admitted up to", one number per room, moves. An **admission token** is the fan's
turn: bound to their identity and date, it expires with the turn, and the hold endpoint
verifies it by its signature. Both are JWTs (HS256, pyjwt) under a key derived from
JWT_SECRET for this purpose alone, so that neither can pass for the other or for a login.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import jwt

from amphi import errors

STATES = ("open", "paused", "closed")
T = TypeVar("T")
_TICKET, _ADMISSION = "queue", "admission"


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """What an operator sets (CLI `amphi queue open`); changeable while the room is open."""
    event_date: date
    prequeue_at: datetime  # fans may join from then; before the on-sale, in the pre-queue
    on_sale_at: datetime
    rate_per_minute: int  # admissions per minute; 0: no rate, only the cap
    max_active: int  # admitted fans whose turn has not ended; 0: no cap
    turn_seconds: int

    def __post_init__(self) -> None:
        if self.prequeue_at > self.on_sale_at:
            raise errors.ValidationFailed("The pre-queue cannot open after the on-sale start.")
        if self.rate_per_minute < 0 or self.max_active < 0:
            raise errors.ValidationFailed("The rate and the cap cannot be negative.")
        if not (self.rate_per_minute or self.max_active):
            raise errors.ValidationFailed("Admission needs a rate, a cap on active shoppers, "
                                          "or both.")
        if not 5 <= self.turn_seconds <= 6 * 3600:
            raise errors.ValidationFailed("A turn lasts between 5 seconds and 6 hours.")


@dataclass(frozen=True, slots=True)
class RoomState:
    """One room as lua/room_admit.lua reports it (admission advanced to `now_ms`)."""
    state: str
    admitted: int  # every position up to this one has been admitted
    last: int  # the last position given
    active: int  # turns not yet ended
    epoch: int  # tokens of another epoch are void (a revocation)
    on_sale_ms: int
    now_ms: int  # Redis' clock
    rate_per_minute: int
    max_active: int
    turn_seconds: int
    prequeue: int  # fans who joined before the start
    turns_expired: int  # turns that ran out without an order, ever

    @property
    def started(self) -> bool:
        return self.now_ms >= self.on_sale_ms

    @property
    def waiting(self) -> int:
        return max(0, self.last - self.admitted)


def parse_state(reply: list[Any]) -> RoomState | None:
    if _text(reply[0]) == "none":
        return None
    state, *numbers = reply
    return RoomState(_text(state), *(int(n) for n in numbers))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Place:
    """What a fan sees: where they are and what to expect."""
    state: str  # pre_queue | waiting | admitted | paused | closed
    position: int | None
    ahead: int | None
    estimated_wait_seconds: int | None


def place_of(position: int | None, room: RoomState) -> Place:
    """`position` None: in the pre-queue, not yet drawn."""
    until_start = max(0, (room.on_sale_ms - room.now_ms) // 1000)
    if room.state == "closed":
        return Place("closed", position, None, None)
    if position is None:
        return Place("pre_queue", None, None, until_start)
    if position <= room.admitted:
        return Place("admitted", position, 0, 0)
    ahead = position - room.admitted - 1
    state = "paused" if room.state == "paused" else "waiting"
    return Place(state, position, ahead, until_start + wait_seconds(ahead + 1, room))


def wait_seconds(turns: int, room: RoomState) -> int:
    """How long `turns` more admissions take at the room's pace: the rate, or with only a
    cap, one turn's length for every `max_active` fans (turns that end early make it less)."""
    if room.rate_per_minute:
        return -(-turns * 60 // room.rate_per_minute)
    return -(-turns // max(1, room.max_active)) * room.turn_seconds


# -- tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueueTicket:
    event_date: date
    identity: str
    position: int | None  # None: in the pre-queue
    joined_ms: int
    admitted: bool = False  # the fan has been told they are admitted (counted once)


@dataclass(frozen=True, slots=True)
class Admission:
    event_date: date
    identity: str
    position: int
    epoch: int
    expires_ms: int


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"amphi waiting room", hashlib.sha256).digest()


class Tokens:
    def __init__(self, secret: str) -> None:
        self._key = _key(secret)

    def ticket(self, t: QueueTicket) -> str:
        claims = {"typ": _TICKET, "d": t.event_date.isoformat(), "sub": t.identity,
                  "p": t.position, "j": t.joined_ms}
        if t.admitted:
            claims["a"] = 1
        return jwt.encode(claims, self._key, algorithm="HS256")

    def read_ticket(self, text: str) -> QueueTicket:
        return self._decode(text, _TICKET, "This queue ticket is not valid.", lambda c: QueueTicket(
            date.fromisoformat(c["d"]), str(c["sub"]),
            c["p"] if isinstance(c["p"], int) else None, int(c["j"]), c.get("a") == 1))

    def admission(self, a: Admission) -> str:
        return jwt.encode({"typ": _ADMISSION, "d": a.event_date.isoformat(), "sub": a.identity,
                           "p": a.position, "e": a.epoch, "exp": a.expires_ms // 1000},
                          self._key, algorithm="HS256")

    def read_admission(self, text: str) -> Admission:
        return self._decode(
            text, _ADMISSION, "This admission token is not valid or has expired.",
            lambda c: Admission(date.fromisoformat(c["d"]), str(c["sub"]), int(c["p"]),
                                int(c["e"]), int(c["exp"]) * 1000))

    def _decode(self, text: str, typ: str, refusal: str,
                build: Callable[[dict[str, Any]], T]) -> T:
        try:
            claims: dict[str, Any] = jwt.decode(text, self._key, algorithms=["HS256"])
            if claims.get("typ") != typ:
                raise jwt.InvalidTokenError("wrong type")
            return build(claims)
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise (errors.AdmissionRequired(refusal) if typ == _ADMISSION
                   else errors.ValidationFailed(refusal, field="queue_ticket")) from None


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
