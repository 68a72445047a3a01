"""Read-only figures of every loaded block, for metrics and operators."""

from __future__ import annotations

from dataclasses import dataclass

from engine import keys, scripts
from engine.holds import RECLAIM_LIMIT, TOMBSTONE_MS, BlockCounts, block_keys, parse_block_ref


@dataclass(frozen=True, slots=True)
class BlockStats:
    block: keys.BlockKeys
    counts: BlockCounts
    expired: int  # holds that ever expired in this block (meta field `expired`)


async def loaded_blocks(client: scripts.AsyncClient) -> list[keys.BlockKeys]:
    refs = await client.smembers(keys.blocks_index())
    return sorted(map(parse_block_ref, refs), key=lambda b: (b.event_date, b.section))


async def block_stats(client: scripts.AsyncClient) -> list[BlockStats]:
    """Counters (after reclaiming expired holds) and expiry totals of every loaded block."""
    blocks = await loaded_blocks(client)
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
    stats = []
    for block, reply, n in zip(blocks, replies, expired, strict=True):
        if int(reply[0]) < 0:
            continue
        capacity, held, sold, price, active = (int(v) for v in reply[:5])
        stats.append(BlockStats(block, BlockCounts(capacity, held, sold, price, active == 1),
                                int(n or 0)))
    return stats
