"""Reading a block whole and rebuilding it from the ledger: the Redis side of reconcile."""

from __future__ import annotations

import json
from dataclasses import dataclass

from amphi import errors, keys
from amphi.block_spec import BlockSpec
from engine import scripts
from engine.blocks import access_argv, spec_argv
from engine.codecs import block_keys, block_ref, split_records, text, time_ms
from engine.drift import Snapshot


def snapshot(client: scripts.Client, block: keys.BlockKeys) -> Snapshot:
    """The block as one transaction saw it (all its keys share one slot)."""
    # Redis's clock, read just before: a cluster's transactions refuse TIME, and judging
    # holds "long past their expiry" does not need the same millisecond.
    now_ms = time_ms(client.time())
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(block.meta)
    pipe.get(block.seats)
    pipe.zrange(block.holds, 0, -1, withscores=True)
    pipe.hgetall(block.records)
    pipe.hgetall(block.sales)
    meta, seats, holds, records, sales = pipe.execute()
    hold_records, clients = split_records(records)
    return Snapshot(
        now_ms=now_ms,
        meta={text(k): text(v) for k, v in meta.items()},
        seats=text(seats) if seats is not None else "",
        holds={text(h): int(score) for h, score in holds},
        records=hold_records,
        sales={text(k): json.loads(v) for k, v in sales.items()},
        clients=clients,
    )


@dataclass(frozen=True, slots=True)
class Rebuilt:
    seats_changed: int
    holds_ended: int
    sold: int
    held: int


def rebuild(client: scripts.Client, spec: BlockSpec, *, ticket_seats: list[int] | int,
            settled_orders: list[str]) -> Rebuilt:
    """Make the block agree with the ledger (lua/rebuild_block.lua), creating it if missing.
    `ticket_seats`: the seat indices of live tickets, or their count for general admission."""
    reply = scripts.run(
        client,
        "rebuild_block",
        [*block_keys(spec.block), spec.block.sales],
        [*spec_argv(spec, ticket_seats), ",".join(settled_orders), *access_argv(spec)],
    )
    if int(reply[0]) != 1:
        raise errors.BlockConflict(f"{spec.block.tag}: {text(reply[1])}")
    client.sadd(keys.blocks_index(), block_ref(spec.block))
    return Rebuilt(*(int(v) for v in reply[1:5]))
