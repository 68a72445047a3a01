"""Synchronous block operations for operator commands and workers: load, sweep, inspect."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from amphi import errors, keys
from amphi.accessible import pairs_arg
from amphi.block_spec import BlockSpec
from engine import scripts
from engine.codecs import block_keys, block_ref, parse_block_refs, parse_counts
from engine.hold_types import RECLAIM_LIMIT, TOMBSTONE_MS, BlockCounts

log = logging.getLogger(__name__)


def spec_argv(spec: BlockSpec, sold: Sequence[int] | int = ()) -> list[str | int]:
    """The block's ARGV head in load_block.lua and rebuild_block.lua: kind, capacity, rows,
    seats a row, price, on sale, and its sold seat indices (or their count, for GA)."""
    sold_arg = str(sold) if isinstance(sold, int) else ",".join(str(i) for i in sold)
    return [str(spec.kind), spec.capacity, spec.rows, spec.seats_per_row, spec.price_cents,
            "1" if spec.active else "0", sold_arg]


def access_argv(spec: BlockSpec) -> list[str]:
    """The block's accessible seating, as load_block.lua and rebuild_block.lua end their
    ARGV: the pairs in order ('' none), and '1' if the box office released them."""
    return [pairs_arg(spec.accessible), "1" if spec.accessible_released else "0"]


def load_block_call(
    spec: BlockSpec, sold: Sequence[int] | int = ()
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of lua/load_block.lua for `spec`."""
    return [spec.block.meta, spec.block.seats], [*spec_argv(spec, sold), *access_argv(spec)]


def load_outcome(spec: BlockSpec, reply: list[Any]) -> str:
    """'created' or 'refreshed'; BlockConflict when the script refused."""
    outcome = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    if int(reply[0]) != 1:
        raise errors.BlockConflict(f"{spec.block.tag}: {outcome}")
    return outcome


def load_block(client: scripts.Client, spec: BlockSpec, sold: Sequence[int] | int = ()) -> str:
    """Create the block in Redis (with `sold` seat indices, or a count for GA) or refresh
    its price, on-sale flag and accessible seating. Returns 'created' or 'refreshed'."""
    outcome = load_outcome(spec, scripts.run(client, "load_block", *load_block_call(spec, sold)))
    client.sadd(keys.blocks_index(), block_ref(spec.block))
    return outcome


def loaded_blocks(client: scripts.Client) -> list[keys.BlockKeys]:
    return parse_block_refs(client.smembers(keys.blocks_index()))


def missing(client: scripts.Client, blocks: list[keys.BlockKeys]) -> list[keys.BlockKeys]:
    """The blocks Redis does not have (their meta key is gone), in one round trip; the
    async hot path's twin is `HoldEngine.missing`."""
    pipe = client.pipeline(transaction=False)
    for block in blocks:
        pipe.exists(block.meta)
    return [b for b, n in zip(blocks, pipe.execute(), strict=True) if not n]


def counts(client: scripts.Client, block: keys.BlockKeys) -> BlockCounts | None:
    """Counters after reclaiming expired holds (at most RECLAIM_LIMIT of them)."""
    reply = scripts.run(client, "availability", block_keys(block), [RECLAIM_LIMIT, TOMBSTONE_MS])
    return parse_counts(reply)


def sweep(client: scripts.Client) -> int:
    """Reclaim every loaded block's expired holds. Returns the seats given back."""
    freed_total = 0
    for block in loaded_blocks(client):
        while True:
            reply = scripts.run(
                client, "availability", block_keys(block), [RECLAIM_LIMIT, TOMBSTONE_MS]
            )
            if int(reply[0]) < 0:
                break
            freed, left = int(reply[5]), int(reply[6])
            freed_total += freed
            if left == 0:
                break
    if freed_total:
        log.info("sweep reclaimed expired holds", extra={"seats_freed": freed_total})
    return freed_total


def seat_map(client: scripts.Client, block: keys.BlockKeys) -> str:
    raw = client.get(block.seats)
    return raw.decode() if isinstance(raw, bytes) else (raw or "")
