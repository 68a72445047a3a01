"""The Lua scripts' wire format: KEYS and ARGV built, replies and records parsed, refusals
mapped to the domain errors the API answers with. Plain
functions, shared by the async hot path (engine/holds.py) and the synchronous callers
(engine/blocks.py, engine/admin.py, ...), testable without Redis."""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import Any

from amphi import errors, keys
from engine.hold_types import RECLAIM_LIMIT, Accessible, BlockCounts, Hold, Offer


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
                tail: tuple[bytes, ...], keyed: bool, previous_id: str,
                picks: list[int] | None = None,
                accessible: Accessible | None = None) -> tuple[Any, ...]:
    """create_hold's ARGV for a hold; `tail` is ARGV[3] and ARGV[7..10] as `hold_tail`
    encoded them; `picks`, the seat indices the fan chose (ascending), or None for best
    available; `accessible`, the wheelchair spaces asked for."""
    ttl, mode, limit, max_active, rate = tail
    return (hold_id, quantity, ttl, owner, client, _FLAG[allow_split], mode, limit, max_active,
            rate, _FLAG[keyed], previous_id, picks_arg(picks), *accessible_args(accessible))


def accessible_args(accessible: Accessible | None) -> tuple[Any, ...]:
    """create_hold's ARGV[14..15]: wheelchair spaces and whether with companions."""
    if accessible is None:
        return ()
    return (accessible.spaces, _FLAG[accessible.companions])


def picks_arg(picks: list[int] | None) -> str:
    return ",".join(map(str, picks)) if picks else ""


def hold_tail(ttl_ms: int, max_active: int, rate_limit: int) -> tuple[bytes, ...]:
    """The arguments of create_hold that one engine always passes alike, encoded once."""
    return tuple(b"%d" % v if isinstance(v, int) else v
                 for v in (ttl_ms, b"hold", RECLAIM_LIMIT, max_active, rate_limit))


def split_records(raw: dict[Any, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """A block's `records` hash, as HGETALL returns it: the hold records by id, and each
    client's active holds (its 'c:<client>' entry; see lua/_block.lua)."""
    holds: dict[str, dict[str, Any]] = {}
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
    return BlockCounts(capacity, held, sold, price, active == 1, int(reply[7]), int(reply[8]))


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_REFUSALS: dict[str, type[errors.DomainError]] = {
    "no_block": errors.InventoryUnavailable,  # the API only asks for blocks the ledger has
    "not_on_sale": errors.NotOnSale,
    "sold_out": errors.SoldOut,
    "no_adjacent": errors.NoAdjacentSeats,
    "rate_limited": errors.RateLimited,
    "too_many_holds": errors.TooManyHolds,
    "idempotency_mismatch": errors.IdempotencyMismatch,
    "seats_unavailable": errors.SeatsUnavailable,
    "no_accessible": errors.AccessibleUnavailable,
}


def refusal(reply: list[Any]) -> errors.DomainError:
    """The error for a script's refusal reply {0, reason, value[, price_cents]}."""
    cls = _REFUSALS[text(reply[1])]
    if cls in (errors.RateLimited, errors.TooManyHolds):
        return cls(retry_after_ms=int(reply[2]))
    if cls in (errors.SoldOut, errors.NoAdjacentSeats, errors.AccessibleUnavailable):
        return cls(available=int(reply[2]), price_cents=int(reply[3]))
    if cls is errors.SeatsUnavailable:  # the engine names the seats (engine/holds.py)
        return cls(seat_indices=[int(v) for v in reply[4:]], price_cents=int(reply[3]))
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
        accessible=int(rec.get("acc", 0)),
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
