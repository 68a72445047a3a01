"""Read-only figures of every loaded block, for metrics and operators."""

from __future__ import annotations

from dataclasses import dataclass

from amphi import keys
from engine import scripts
from engine.codecs import block_keys, parse_block_refs, parse_counts
from engine.hold_types import RECLAIM_LIMIT, TOMBSTONE_MS, BlockCounts


@dataclass(frozen=True, slots=True)
class BlockStats:
    block: keys.BlockKeys
    counts: BlockCounts
    expired: int  # holds that ever expired in this block (meta field `expired`)


async def block_stats(client: scripts.AsyncClient) -> list[BlockStats]:
    """Counters (after reclaiming expired holds) and expiry totals of every loaded block."""
    blocks = parse_block_refs(await client.smembers(keys.blocks_index()))
    if not blocks:
        return []
    args = (RECLAIM_LIMIT, TOMBSTONE_MS)
    replies = await scripts.arun_each(
        client, "availability", [(block_keys(block), args) for block in blocks]
    )
    pipe = client.pipeline(transaction=False)
    for block in blocks:
        pipe.hget(block.meta, "expired")
    expired = await pipe.execute()
    return [BlockStats(block, counts, int(n or 0))
            for block, counts, n in zip(blocks, map(parse_counts, replies), expired, strict=True)
            if counts is not None]
