"""What the box office admin reads and changes in the hot path, asynchronously: a loaded
block's price and on-sale flag, and the list of active holds. (A forced release is
`HoldEngine.release(..., force=True)`.)"""

from __future__ import annotations

from dataclasses import dataclass

from amphi import keys
from amphi.block_spec import BlockSpec
from amphi.geometry import Geometry, Seat
from engine import scripts
from engine.blocks import load_block_call, load_outcome
from engine.codecs import block_ref, parse_block_refs, parse_record, text, time_ms
from engine.hold_types import Hold


async def refresh_loaded_blocks(client: scripts.AsyncClient, specs: list[BlockSpec]) -> int:
    """Give the blocks already in Redis the price and on-sale flag of their `specs`, at once
    (two round trips). Blocks not loaded are left alone: creating one here would not know
    its sold seats, which `amphi setup-venue` loads from the ledger. Returns how many were
    refreshed."""
    loaded = {text(ref) for ref in await client.smembers(keys.blocks_index())}
    todo = [spec for spec in specs if block_ref(spec.block) in loaded]
    if todo:
        replies = await scripts.arun_each(
            client, "load_block", [load_block_call(spec) for spec in todo]
        )
        for spec, reply in zip(todo, replies, strict=True):
            load_outcome(spec, reply)
    return len(todo)


@dataclass(frozen=True, slots=True)
class ActiveHold:
    hold: Hold
    seats: list[Seat]  # row letter and seat number; empty for general admission


async def active_holds(client: scripts.AsyncClient) -> list[ActiveHold]:
    """Every unexpired active hold of every loaded block, soonest expiry first. Two
    pipelined round trips whatever the number of blocks."""
    now_ms = time_ms(await client.time())
    blocks = parse_block_refs(await client.smembers(keys.blocks_index()))
    pipe = client.pipeline(transaction=False)
    for block in blocks:
        # Past-expiry holds still in the zset are the sweeper's; they hold nothing for sale.
        pipe.zrangebyscore(block.holds, f"({now_ms}", "+inf")
        pipe.hmget(block.meta, "kind", "rows", "seats_per_row")
    replies = await pipe.execute()
    found: list[tuple[keys.BlockKeys, list[str], Geometry | None]] = []
    pipe = client.pipeline(transaction=False)
    for i, block in enumerate(blocks):
        ids = [text(h) for h in replies[2 * i]]
        if not ids:
            continue
        kind, rows, per_row = replies[2 * i + 1]
        geometry = (Geometry(int(rows), int(per_row))
                    if kind is not None and text(kind) == "reserved" else None)
        found.append((block, ids, geometry))
        pipe.hmget(block.records, ids)
    records = await pipe.execute() if found else []
    out = []
    for (block, ids, geometry), raws in zip(found, records, strict=True):
        for hold_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                continue  # ended between the two round trips
            hold = parse_record(hold_id, block, raw)
            if hold.status != "active":
                continue
            seats = [geometry.seat(i) for i in hold.seats] if geometry else []
            out.append(ActiveHold(hold, seats))
    out.sort(key=lambda a: (a.hold.expires_ms, a.hold.hold_id))
    return out
