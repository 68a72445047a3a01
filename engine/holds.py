"""Where a hold is made, looked up and released: the async hot path over the Lua scripts.

Argument building and reply parsing are plain functions, shared with the synchronous
callers in `engine/blocks.py` and testable without Redis.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from amphi import errors
from engine import keys, scripts
from engine.autopipeline import AutoPipeline

RECLAIM_LIMIT = 200  # expired holds one script call reclaims; keeps each call short
TOMBSTONE_MS = 3_600_000  # ended holds stay readable (status "expired"/"released") an hour


@dataclass(frozen=True, slots=True)
class BlockCounts:
    capacity: int
    held: int
    sold: int
    price_cents: int
    active: bool

    @property
    def available(self) -> int:
        return self.capacity - self.held - self.sold


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and every hold
# builds one of these (12 fields) and an Offer on the hot path. Treat them as values.
@dataclass(slots=True)
class Hold:
    hold_id: str
    event_date: date
    section: str
    status: str  # active | released | expired | sold
    owner: str  # user id, "" for a guest
    client: str
    quantity: int
    price_cents: int
    seats: list[int] = field(default_factory=list)
    created_ms: int = 0
    expires_ms: int = 0
    ended_ms: int | None = None

    @property
    def total_cents(self) -> int:
        return self.quantity * self.price_cents


@dataclass(slots=True)
class Offer:
    """What a check (or a new hold) found: the seats and the price each."""

    quantity: int
    price_cents: int
    seats: list[int]
    expires_ms: int = 0


# -- pure argument building and reply parsing ------------------------------------------
@functools.lru_cache(maxsize=4096)
def block_keys(block: keys.BlockKeys) -> tuple[str, ...]:
    """The five keys every block script takes, in the order of lua/_block.lua."""
    return (block.meta, block.seats, block.holds, block.records, block.ended)


@functools.lru_cache(maxsize=4096)
def encoded_block_keys(block: keys.BlockKeys) -> tuple[bytes, ...]:
    """`block_keys` encoded once: redis-py sends bytes as they are, where it would encode
    a str on every call (the hot path's client-side cost grows with each argument)."""
    return tuple(k.encode() for k in block_keys(block))


_FLAG = (b"0", b"1")


def create_args(hold_id: str, quantity: int, *, owner: str, client: str, allow_split: bool,
                tail: tuple[bytes, ...], keyed: bool, previous_id: str) -> tuple[Any, ...]:
    """create_hold's ARGV for a hold; `tail` is ARGV[3] and ARGV[7..10] as `hold_tail`
    encoded them."""
    ttl, mode, limit, max_active, rate = tail
    return (hold_id, quantity, ttl, owner, client, _FLAG[allow_split], mode, limit, max_active,
            rate, _FLAG[keyed], previous_id)


def hold_tail(ttl_ms: int, max_active: int, rate_limit: int) -> tuple[bytes, ...]:
    """The arguments of create_hold that one engine always passes alike, encoded once."""
    return tuple(b"%d" % v if isinstance(v, int) else v
                 for v in (ttl_ms, b"hold", RECLAIM_LIMIT, max_active, rate_limit))


def split_records(raw: dict[Any, Any]) -> tuple[dict[str, dict], dict[str, int]]:
    """A block's `records` hash, as HGETALL returns it: the hold records by id, and each
    client's active holds (its 'c:<client>' entry; see lua/_block.lua)."""
    holds: dict[str, dict] = {}
    clients: dict[str, int] = {}
    for k, v in raw.items():
        key = text(k)
        if key.startswith("c:"):
            clients[key[2:]] = int(text(v).split(" ", 1)[0])
        else:
            holds[key] = json.loads(v)
    return holds, clients


def parse_counts(reply: list[Any]) -> BlockCounts | None:
    if int(reply[0]) < 0:
        return None
    capacity, held, sold, price, active = (int(v) for v in reply[:5])
    return BlockCounts(capacity, held, sold, price, active == 1)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_REFUSALS: dict[str, type[errors.DomainError]] = {
    "no_block": errors.NotOnSale,
    "not_on_sale": errors.NotOnSale,
    "sold_out": errors.SoldOut,
    "no_adjacent": errors.NoAdjacentSeats,
    "rate_limited": errors.RateLimited,
    "too_many_holds": errors.TooManyHolds,
    "idempotency_mismatch": errors.IdempotencyMismatch,
}


def refusal(reply: list[Any]) -> errors.DomainError:
    """The error for a script's refusal reply {0, reason, value[, price_cents]}."""
    cls = _REFUSALS[text(reply[1])]
    if cls in (errors.RateLimited, errors.TooManyHolds):
        return cls(retry_after_ms=int(reply[2]))
    if cls in (errors.SoldOut, errors.NoAdjacentSeats):
        return cls(available=int(reply[2]), price_cents=int(reply[3]))
    return cls()


def parse_offer(reply: list[Any], quantity: int) -> Offer:
    """Reply of create_hold: {1|2, expires_ms, price_cents, seat...} or a refusal."""
    if int(reply[0]) == 0:
        raise refusal(reply)
    return Offer(quantity, int(reply[2]), [int(v) for v in reply[3:]], int(reply[1]))


def parse_record(hold_id: str, block: keys.BlockKeys, raw: Any) -> Hold:
    rec = json.loads(raw)
    seats = rec.get("seats") or []
    return Hold(
        hold_id=hold_id,
        event_date=block.event_date,
        section=block.section,
        status=rec["status"],
        owner=rec.get("owner", ""),
        client=rec.get("client", ""),
        quantity=int(rec["qty"]),
        price_cents=int(rec["price_cents"]),
        seats=[int(s) for s in seats] if isinstance(seats, list) else [],
        created_ms=int(rec["created_ms"]),
        expires_ms=int(rec["expires_ms"]),
        ended_ms=int(rec["ended_ms"]) if rec.get("ended_ms") is not None else None,
    )


def block_ref(block: keys.BlockKeys) -> str:
    return f"{block.event_date.isoformat()}|{block.section}"


def parse_block_ref(raw: Any) -> keys.BlockKeys:
    day, section = text(raw).split("|", 1)
    return keys.BlockKeys(date.fromisoformat(day), section)


def parse_block_refs(refs: Any) -> list[keys.BlockKeys]:
    """The members of `keys.blocks_index()`, by date then section."""
    return sorted(map(parse_block_ref, refs), key=lambda b: (b.event_date, b.section))


def time_ms(reply: Any) -> int:
    """Redis TIME's reply (seconds, microseconds) in milliseconds."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


@functools.lru_cache(maxsize=4096)
def block_prefix(block: keys.BlockKeys) -> bytes:
    return hashlib.blake2b(block_ref(block).encode(), digest_size=5).digest()


IDEMPOTENCY_WINDOW_S = 3600  # no longer than TOMBSTONE_MS: see new_hold_id


def new_hold_id(block: keys.BlockKeys, *, client: str = "", idempotency_key: str | None = None,
                secret: bytes = b"", window: int = 0) -> str:
    """A UUID (version 8) whose first 40 bits name the block, so that a hold id alone finds
    its hold without a pointer key. The other 82 bits are random or, for a request with an
    Idempotency-Key, a keyed hash of the client, the key and the hour (`window`): a retry
    names the same hold, and create_hold.lua, idempotent per hold id, returns it. Within an
    hour of a hold its record (or tombstone) still exists, so the key is recognised; a key
    used again in a later hour makes a new id, so an id never names two holds."""
    if idempotency_key:
        tail = hashlib.blake2b(f"{client}\n{idempotency_key}\n{window}".encode(),
                               key=secret[:64], digest_size=11).digest()
    else:
        tail = os.urandom(11)
    raw = bytearray(block_prefix(block) + tail)
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()  # str(uuid.UUID(bytes=raw)), without building the UUID object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- the async service ------------------------------------------------------------------
class HoldEngine:
    """The hot path. One per API process, built in the lifespan around a shared client."""

    def __init__(
        self,
        client: scripts.AsyncClient,
        *,
        ttl_seconds: int,
        max_quantity: int,
        max_active_per_owner: int,
        rate_limit_per_minute: int,
        id_secret: bytes = b"",
        autopipeline: bool = True,
        observe_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        # Scripts go through the auto-pipeline; the rare reads (a hold, the clock) do not.
        self.pipeline = AutoPipeline(client, observe=observe_batch) if autopipeline else None
        self.ttl_ms = ttl_seconds * 1000
        self.max_quantity = max_quantity
        self.max_active = max_active_per_owner
        self.rate_limit = rate_limit_per_minute
        self.id_secret = id_secret  # keys the hash that turns an Idempotency-Key into an id
        self._tail = hold_tail(self.ttl_ms, max_active_per_owner, rate_limit_per_minute)
        self._blocks: dict[bytes, keys.BlockKeys] = {}  # hold id prefix -> block

    def _check_quantity(self, quantity: int) -> None:
        if not 1 <= quantity <= self.max_quantity:
            raise errors.InvalidRequest(
                f"quantity must be between 1 and {self.max_quantity}", field="quantity"
            )

    async def availability(self, blocks: list[keys.BlockKeys]) -> list[BlockCounts | None]:
        """Counters of several blocks in one round trip (expired holds reclaimed first)."""
        args = (RECLAIM_LIMIT, TOMBSTONE_MS)
        replies = await scripts.arun_each(
            self.client, "availability", [(block_keys(block), args) for block in blocks]
        )
        return [parse_counts(r) for r in replies]

    async def check(
        self, block: keys.BlockKeys, quantity: int, *, allow_split: bool = False
    ) -> Offer:
        self._check_quantity(quantity)
        reply = await scripts.arun(
            self.client,
            "create_hold",
            block_keys(block),
            ["check", quantity, 0, "", "", int(allow_split), "check", RECLAIM_LIMIT,
             self.max_active, 0, 0, ""],
            via=self.pipeline,
        )
        return parse_offer(reply, quantity)

    async def create(
        self,
        block: keys.BlockKeys,
        quantity: int,
        *,
        owner: str,
        client: str,
        idempotency_key: str | None = None,
        allow_split: bool = False,
    ) -> Hold:
        """Hold `quantity` best-available seats for `client` in one script call; raises a
        DomainError if not. A retry with the same Idempotency-Key returns the same hold."""
        self._check_quantity(quantity)
        if idempotency_key:
            window = int(time.time()) // IDEMPOTENCY_WINDOW_S
            ids = [new_hold_id(block, client=client, idempotency_key=idempotency_key,
                               secret=self.id_secret, window=w) for w in (window, window - 1)]
        else:
            ids = [new_hold_id(block), ""]
        reply = await scripts.arun(
            self.client,
            "create_hold",
            encoded_block_keys(block),
            create_args(ids[0], quantity, owner=owner, client=client, allow_split=allow_split,
                        tail=self._tail, keyed=bool(idempotency_key), previous_id=ids[1]),
            via=self.pipeline,
        )
        offer = parse_offer(reply, quantity)
        code = int(reply[0])
        if code != 1:  # 2 or 3: a retry, answered with the hold it made
            return await self.get(ids[code - 2])
        return Hold(
            hold_id=ids[0],
            event_date=block.event_date,
            section=block.section,
            status="active",
            owner=owner,
            client=client,
            quantity=quantity,
            price_cents=offer.price_cents,
            seats=offer.seats,
            expires_ms=offer.expires_ms,
            created_ms=offer.expires_ms - self.ttl_ms,
        )

    async def locate(self, hold_id: str) -> keys.BlockKeys:
        """The block a hold id names (see `new_hold_id`)."""
        try:
            prefix = uuid.UUID(hold_id).bytes[:5]
        except ValueError:
            raise errors.HoldNotFound() from None
        if prefix not in self._blocks:
            refs = await self.client.smembers(keys.blocks_index())
            self._blocks = {block_prefix(b): b for b in map(parse_block_ref, refs)}
        try:
            return self._blocks[prefix]
        except KeyError:
            raise errors.HoldNotFound() from None

    async def get(self, hold_id: str) -> Hold:
        block = await self.locate(hold_id)
        raw = await self.client.hget(block.records, hold_id)
        if raw is None:
            raise errors.HoldNotFound()
        return parse_record(hold_id, block, raw)

    async def now_ms(self) -> int:
        return time_ms(await self.client.time())

    async def get_with_time(self, hold_id: str) -> tuple[Hold, int]:
        """The hold and Redis's clock now (ms): its record and the time in one round trip
        where the auto-pipeline runs, for callers that judge whether it is still live."""
        block = await self.locate(hold_id)
        if self.pipeline is None:
            raw, now = await self.client.hget(block.records, hold_id), await self.client.time()
        else:
            raw, now = await asyncio.gather(
                self.pipeline.execute_command("HGET", block.records, hold_id),
                self.pipeline.execute_command("TIME"))
        if raw is None:
            raise errors.HoldNotFound()
        return parse_record(hold_id, block, raw), time_ms(now)

    async def release(self, hold_id: str, *, requester: str, force: bool = False) -> Hold:
        """Release an active hold. `requester` is the caller's user id ('' for a guest);
        `force` (the box office) releases it whoever owns it."""
        block = await self.locate(hold_id)
        reply = await scripts.arun(
            self.client, "release_hold", block_keys(block), [hold_id, requester, int(force)],
            via=self.pipeline,
        )
        if int(reply[0]) == 0:
            reason = text(reply[1])
            if reason == "not_found":
                raise errors.HoldNotFound()
            if reason == "forbidden":
                raise errors.Forbidden("This hold belongs to another account.")
            raise errors.HoldNotActive(
                f"This seat hold is already {text(reply[2])}.", status=text(reply[2])
            )
        return await self.get(hold_id)
