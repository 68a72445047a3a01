"""Helpers shared by the engine tests: block set-up and a whole-block invariant checker.

`block_violations` reads one block's keys and lists every broken invariant (DESIGN.md
1 and 2) instead of asserting, so that the race test's control case can prove that the
checker catches a double-booking.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
import redis.asyncio as aredis

from amphi import keys
from amphi.block_spec import BlockSpec
from engine.blocks import load_block
from engine.codecs import split_records
from engine.holds import HoldEngine
from engine.transport.connection import async_client

DAY = date(2026, 6, 19)
PRICE = 7_500


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def new_block(prefix: str = "sec") -> keys.BlockKeys:
    """A block with a fresh section slug, so tests never share keys."""
    return keys.BlockKeys(DAY, f"{prefix}-{uuid.uuid4().hex[:10]}")


def new_block_beside(client: Any, near: keys.BlockKeys, prefix: str = "sec") -> keys.BlockKeys:
    """A fresh block on the same server as `near` (on a cluster: a slot of the same node),
    for tests where one block's script must queue behind another's."""
    if not isinstance(client, redis.RedisCluster):
        return new_block(prefix)
    node = client.get_node_from_key(near.meta).name
    while True:
        block = new_block(prefix)
        if client.get_node_from_key(block.meta).name == node:
            return block


def reserved_spec(
    block: keys.BlockKeys, rows: int, seats_per_row: int, *, price: int = PRICE,
    active: bool = True,
) -> BlockSpec:
    return BlockSpec(block, "reserved", rows * seats_per_row, rows, seats_per_row, price, active)


def ga_spec(
    block: keys.BlockKeys, capacity: int, *, price: int = PRICE, active: bool = True
) -> BlockSpec:
    # as ledger/inventory.py builds it: one row as wide as the capacity
    return BlockSpec(block, "ga", capacity, 1, capacity, price, active)


def load_reserved(
    client: redis.Redis, rows: int, seats_per_row: int, *, sold: list[int] | tuple = (),
    active: bool = True, prefix: str = "res", block: keys.BlockKeys | None = None,
) -> keys.BlockKeys:
    block = block or new_block(prefix)
    assert load_block(client, reserved_spec(block, rows, seats_per_row, active=active),
                      list(sold)) == "created"
    return block


def load_ga(
    client: redis.Redis, capacity: int, *, sold: int = 0, active: bool = True
) -> keys.BlockKeys:
    block = new_block("ga")
    assert load_block(client, ga_spec(block, capacity, active=active), sold) == "created"
    return block


def write_seat_map(
    client: redis.Redis, block: keys.BlockKeys, seats: str, seats_per_row: int,
    *, price: int = PRICE,
) -> None:
    """Install a reserved block whose seat map is `seats`, counters consistent with it."""
    assert len(seats) % seats_per_row == 0
    client.delete(block.meta, block.seats, block.holds, block.records, block.ended)
    client.set(block.seats, seats)
    client.hset(block.meta, mapping={
        "kind": "reserved", "capacity": len(seats), "rows": len(seats) // seats_per_row,
        "seats_per_row": seats_per_row, "price_cents": price, "active": "1",
        "held": seats.count("H"), "sold": seats.count("S"),
    })
    # registered like load_block does, so the sweeper and hold-id lookups know the block
    client.sadd(keys.blocks_index(), f"{block.event_date.isoformat()}|{block.section}")


def engine_client(url: str, *, max_connections: int = 64) -> Any:
    """An async engine client for `url` (single Redis or cluster), built as the API does."""
    return async_client(url, max_connections=max_connections)


async def ping_owner(client: Any, key: str) -> Any:
    """PING the server that holds `key`: on a cluster, the node of its slot."""
    if isinstance(client, aredis.RedisCluster):
        await client.initialize()
        return await client.execute_command(
            "PING", target_nodes=client.get_node_from_key(key))
    return await client.ping()


def make_engine(
    aclient: Any, *, ttl_seconds: int = 600, max_quantity: int = 8, max_active: int = 4,
    rate_limit: int = 0, autopipeline: bool = True,
) -> HoldEngine:
    return HoldEngine(aclient, ttl_seconds=ttl_seconds, max_quantity=max_quantity,
                      max_active_per_owner=max_active, rate_limit_per_minute=rate_limit,
                      autopipeline=autopipeline)


def seat_string(client: redis.Redis, block: keys.BlockKeys) -> str:
    raw = client.get(block.seats)
    return "" if raw is None else text(raw)


def meta(client: redis.Redis, block: keys.BlockKeys) -> dict[str, str]:
    return {text(k): text(v) for k, v in client.hgetall(block.meta).items()}


def records(client: redis.Redis, block: keys.BlockKeys) -> dict[str, dict]:
    return split_records(client.hgetall(block.records))[0]


def _seats_of(rec: dict) -> list[int]:
    seats = rec.get("seats") or []
    return [int(s) for s in seats] if isinstance(seats, list) else []


@dataclass(frozen=True)
class BlockState:
    """One block's keys, read in one round trip."""

    meta: dict[str, str]
    seats: str
    active: dict[str, int]  # holds zset: hold_id -> expires_ms
    records: dict[str, dict]
    ended: set[str]
    clients: dict[str, int] | None = None  # active holds per client, where counted


def block_state(client: redis.Redis, block: keys.BlockKeys) -> BlockState:
    pipe = client.pipeline(transaction=True)  # MULTI: one consistent snapshot
    pipe.hgetall(block.meta)
    pipe.get(block.seats)
    pipe.zrange(block.holds, 0, -1, withscores=True)
    pipe.hgetall(block.records)
    pipe.zrange(block.ended, 0, -1)
    m, seats, active, recs, ended = pipe.execute()
    hold_records, clients = split_records(recs)
    meta = {text(k): text(v) for k, v in m.items()}
    return BlockState(
        meta=meta,
        seats="" if seats is None else text(seats),
        active={text(k): int(v) for k, v in active},
        records=hold_records,
        ended={text(k) for k in ended},
        clients=clients,
    )


def block_violations(client: redis.Redis, block: keys.BlockKeys) -> list[str]:
    """Every broken invariant of one block (empty list: all hold)."""
    return state_violations(block_state(client, block))


def state_violations(st: BlockState) -> list[str]:
    bad: list[str] = []
    m = st.meta
    if not m:
        return ["block not loaded"]
    capacity, held, sold = int(m["capacity"]), int(m["held"]), int(m["sold"])
    withheld = int(m.get("withheld", 0))
    available = capacity - held - sold - withheld
    if not 0 <= available <= capacity or held < 0 or sold < 0 or withheld < 0:
        bad.append(f"counters out of range: capacity={capacity} held={held} sold={sold} "
                   f"withheld={withheld}")

    recs, active, ended = st.records, st.active, st.ended
    qty_sum = 0
    for hold_id, expires in active.items():
        rec = recs.get(hold_id)
        if rec is None:
            bad.append(f"active hold {hold_id} has no record")
            continue
        if rec["status"] != "active":
            bad.append(f"hold {hold_id} in the active zset with status {rec['status']}")
        if int(rec["expires_ms"]) != expires:
            bad.append(f"hold {hold_id}: zset score {expires} != expires_ms {rec['expires_ms']}")
        qty_sum += int(rec["qty"])
    for hold_id, rec in recs.items():
        if rec["status"] == "active" and hold_id not in active:
            bad.append(f"record {hold_id} says active but is not in the holds zset")
        if rec["status"] != "active" and hold_id not in ended:
            bad.append(f"tombstone {hold_id} not in the ended zset")
    if qty_sum != held:
        bad.append(f"sum of active hold quantities {qty_sum} != held counter {held}")
    if "due_ms" in m and active and int(m["due_ms"]) > min(active.values()):
        bad.append(f"due_ms {m['due_ms']} is after the earliest expiry {min(active.values())}")
    if st.clients is not None:
        per_client = Counter(recs[h]["client"] for h in active if h in recs)
        if {c: n for c, n in st.clients.items() if n} != dict(per_client):
            bad.append(f"per-client hold counts {st.clients} != active holds {per_client}")

    if m["kind"] == "reserved":
        seats = st.seats
        rows, spr = int(m["rows"]), int(m["seats_per_row"])
        if len(seats) != capacity or rows * spr != capacity:
            bad.append(f"seat map length {len(seats)}, capacity {capacity}, {rows}x{spr}")
        states = Counter(seats)
        if set(states) - {"0", "H", "S", "W", "C"}:
            bad.append(f"unknown seat states {set(states) - {'0', 'H', 'S', 'W', 'C'}}")
        if states["W"] + states["C"] != withheld:
            bad.append(f"{states['W'] + states['C']} 'W'/'C' seats but withheld {withheld}")
        if withheld and m.get("access_released") == "1":
            bad.append("seats withheld in a block that released them")
        if states["H"] != held:
            bad.append(f"{states['H']} 'H' seats but held counter {held}")
        if states["S"] != sold:
            bad.append(f"{states['S']} 'S' seats but sold counter {sold}")
        if states["0"] != available:
            bad.append(f"{states['0']} free seats but available {available}")
        owner_of: dict[int, str] = {}
        for hold_id in active:
            rec = recs.get(hold_id)
            if rec is None:
                continue
            idxs = _seats_of(rec)
            if len(idxs) != int(rec["qty"]) or len(set(idxs)) != len(idxs):
                bad.append(f"hold {hold_id}: seats {idxs} for qty {rec['qty']}")
            for i in idxs:
                if i in owner_of:
                    bad.append(f"seat {i} in two active holds {owner_of[i]} and {hold_id}")
                owner_of[i] = hold_id
                state = seats[i] if 0 <= i < len(seats) else "?"
                if state != "H":
                    bad.append(f"seat {i} of active hold {hold_id} is {state!r}, not 'H'")
        for i, state in enumerate(seats):
            if state == "H" and i not in owner_of:
                bad.append(f"seat {i} is 'H' but in no active hold")
    else:
        for hold_id in active:
            if _seats_of(recs.get(hold_id, {})):
                bad.append(f"GA hold {hold_id} has seats")
    return bad


def assert_block_ok(client: redis.Redis, block: keys.BlockKeys) -> None:
    bad = block_violations(client, block)
    assert not bad, "\n".join(bad[:20])


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def force_expire(client: redis.Redis, block: keys.BlockKeys, hold_id: str) -> int:
    """Make an active hold past its expiry, as time passing would: its score in the
    block's holds zset and its record's expires_ms move 1 s into the past (Redis clock), and
    the block's due_ms (no hold expires before it) with them. Returns the new expiry."""
    past = redis_now_ms(client) - 1000
    rec = json.loads(client.hget(block.records, hold_id))
    assert rec["status"] == "active", rec
    rec["expires_ms"] = past
    client.hset(block.records, hold_id, json.dumps(rec))
    client.zadd(block.holds, {hold_id: past}, xx=True)
    due = client.hget(block.meta, "due_ms")
    if due is None or int(due) > past:
        client.hset(block.meta, "due_ms", past)
    return past
