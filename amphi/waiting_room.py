"""The waiting room's rules, without I/O: a room's state as Redis reports it, a fan's place
and wait, and the two signed tokens.

A **queue ticket** carries a fan's place, fixed once at join: their position, or none yet
for a fan in the pre-queue (drawn at the on-sale start). Polling with it costs no lookup:
only "admitted up to", one number per room, moves. An **admission token** is the fan's
turn: bound to their identity and date, it expires with the turn, and the hold endpoint
verifies it by its signature. Both are signed (HMAC-SHA256, itsdangerous) under a key
derived from JWT_SECRET for this purpose alone, so that neither can pass for the other or
for a login (Tokens says why not JWTs).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime

from itsdangerous import BadSignature, Signer

from amphi import errors


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


DEFAULT_TURN_SECONDS = 15 * 60  # long enough to hold and pay


def changed_config(day: date, current: RoomConfig | None, *, now: datetime,
                   prequeue_at: datetime | None = None, on_sale_at: datetime | None = None,
                   rate_per_minute: int | None = None, max_active: int | None = None,
                   turn_seconds: int | None = None) -> RoomConfig:
    """The settings an operator gave (None: not given) over the room's current ones, or a
    new room's defaults: the pre-queue open from `now`, turns of DEFAULT_TURN_SECONDS. A new
    room needs its on-sale start, and a rate or a cap (the caller may take the capacity
    model's rate, amphi/capacity.py)."""
    if on_sale_at is None:
        if current is None:
            raise errors.ValidationFailed("A new waiting room needs its on-sale start.",
                                          field="on_sale_at")
        on_sale_at = current.on_sale_at
    if prequeue_at is None:
        prequeue_at = current.prequeue_at if current else min(now, on_sale_at)
    kept = ((current.rate_per_minute, current.max_active, current.turn_seconds) if current
            else (0, 0, DEFAULT_TURN_SECONDS))
    rate, cap, turn = (k if g is None else g
                       for g, k in zip((rate_per_minute, max_active, turn_seconds), kept,
                                       strict=True))
    return RoomConfig(day, prequeue_at, on_sale_at, rate, cap, turn)


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


@dataclass(frozen=True, slots=True)
class Place:
    """What a fan sees: where they are, what to expect, and when to ask again."""
    state: str  # pre_queue | waiting | paused | admitted | turn_ended | closed
    position: int | None
    ahead: int | None
    estimated_wait_seconds: int | None
    poll_after_seconds: int = 30


MIN_POLL_SECONDS, MAX_POLL_SECONDS = 2, 30


def poll_after(wait_seconds: int) -> int:
    """A tenth of the wait, from 2 to 30 seconds. A line of 60,000 fans polling every 5 s
    is 12,000 requests a second; most of them are far back, and a poll that cannot change
    their news is load for nothing."""
    return max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, wait_seconds // 10))


def place_of(position: int | None, room: RoomState) -> Place:
    """`position` None: in the pre-queue, not yet drawn."""
    until_start = max(0, (room.on_sale_ms - room.now_ms) // 1000)
    if room.state == "closed":
        return Place("closed", position, None, None)
    if position is None:
        # Their place is drawn at the start; they poll as a fan halfway down the pre-queue
        # would, so that the whole pre-queue does not poll every 2 s as the start nears
        # (their first polls after it then spread over their intervals).
        typical = until_start + wait_seconds(max(1, room.prequeue // 2), room)
        return Place("pre_queue", None, None, until_start, poll_after(typical))
    if position <= room.admitted:
        return Place("admitted", position, 0, 0)
    ahead = position - room.admitted - 1
    state = "paused" if room.state == "paused" else "waiting"
    wait = until_start + wait_seconds(ahead + 1, room)
    return Place(state, position, ahead, wait, poll_after(wait))


def wait_seconds(turns: int, room: RoomState) -> int:
    """How long `turns` more admissions take at the room's pace: the rate; or, when the cap
    on active shoppers is what holds admission back (no rate, or every slot taken), one
    turn's length for every `max_active` fans (turns that end early make it less)."""
    by_rate = -(-turns * 60 // room.rate_per_minute) if room.rate_per_minute else 0
    if room.max_active and (not room.rate_per_minute or room.active >= room.max_active):
        return max(by_rate, -(-turns // room.max_active) * room.turn_seconds)
    return by_rate


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


class Tokens:
    """Both tokens are the fields joined by '|' (the identity last: it may hold anything),
    base64url, and an HMAC-SHA256 signature by itsdangerous, salted per kind so that neither
    passes for the other. Not JWTs: pyjwt took 55 µs to verify a queue ticket, about what the
    rest of a poll costs, and itsdangerous 6 µs (both measured on the benchmark machine);
    every poll verifies one. Nothing but this service reads them."""

    def __init__(self, secret: str) -> None:
        key = hmac.new(secret.encode(), b"amphi waiting room", hashlib.sha256).digest()
        self._tickets = Signer(key, salt="queue ticket", digest_method=hashlib.sha256)
        self._admissions = Signer(key, salt="admission token", digest_method=hashlib.sha256)

    def ticket(self, t: QueueTicket) -> str:
        return _sign(self._tickets, t.event_date.isoformat(),
                     "" if t.position is None else str(t.position), str(t.joined_ms),
                     "1" if t.admitted else "0", t.identity)

    def read_ticket(self, text: str) -> QueueTicket:
        try:
            day, position, joined, admitted, identity = _read(self._tickets, text, 5)
            return QueueTicket(date.fromisoformat(day), identity,
                               int(position) if position else None, int(joined),
                               admitted == "1")
        except (BadSignature, ValueError):
            raise errors.ValidationFailed("This queue ticket is not valid.",
                                          field="queue_ticket") from None

    def admission(self, a: Admission) -> str:
        return _sign(self._admissions, a.event_date.isoformat(), str(a.position),
                     str(a.epoch), str(a.expires_ms), a.identity)

    def read_admission(self, text: str, now_ms: int) -> Admission:
        """Refused (AdmissionRequired) if forged, altered or expired at `now_ms`."""
        try:
            day, position, epoch, expires, identity = _read(self._admissions, text, 5)
            admission = Admission(date.fromisoformat(day), identity, int(position),
                                  int(epoch), int(expires))
        except (BadSignature, ValueError):
            admission = None
        if admission is None or admission.expires_ms <= now_ms:
            raise errors.AdmissionRequired("This admission token is not valid or has expired.")
        return admission


def _sign(signer: Signer, *fields: str) -> str:
    payload = base64.urlsafe_b64encode("|".join(fields).encode()).rstrip(b"=")
    return signer.sign(payload).decode()


def _read(signer: Signer, text: str, count: int) -> list[str]:
    payload = signer.unsign(text.encode())
    fields = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode()
    found = fields.split("|", count - 1)
    if len(found) != count:
        raise ValueError("not a token of this kind")
    return found


@functools.lru_cache(maxsize=4096)  # every poll of a room says its on-sale start
def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
