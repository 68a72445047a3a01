"""Inventory that heals itself: when Redis has lost seat blocks that the ledger has (a
restart without persistence, a failover to an empty replica, a flush), they are rebuilt
from the ledger, sold seats and settled sales first, as `amphi reconcile --fix` does. The
worker runs this every SWEEP_INTERVAL_SECONDS; meanwhile the API answers 503
`inventory_unavailable` for those blocks and `/readyz` is not ready.

Only missing blocks are touched here: a block that exists but disagrees with the ledger is
for `amphi reconcile`, where a person sees the finding first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from amphi.block_spec import BlockSpec
from engine import blocks
from ledger.inventory import block_specs
from services.reconcile import Sources, check_block

log = logging.getLogger(__name__)

STALE_AFTER_MS = 60_000  # as reconcile's default: holds this long past expiry are stale


@dataclass(frozen=True, slots=True)
class Restored:
    blocks: int  # rebuilt from the ledger
    failed: int  # missing and not rebuilt (logged): the next run tries again
    seconds: float


def rebuild_block(src: Sources, spec: BlockSpec) -> bool:
    """Build a block Redis does not have from the ledger, as reconcile --fix does: its
    ticketed seats sold, paid sales being finalised kept. False if it could not be."""
    result = check_block(src, spec, fix=True, stale_after_ms=STALE_AFTER_MS)
    return result.rebuilt is not None and not result.remaining


def restore_missing_blocks(src: Sources) -> Restored:
    """Rebuild every block the ledger has and Redis lost. Safe to run twice, and while fans
    hold (each rebuild is one script call); a block that reappeared in the meantime is
    compared with the ledger and fixed only if it drifted, as reconcile --fix would."""
    started = time.monotonic()
    with src.sessions() as session:
        specs = block_specs(session)
    lost = set(blocks.missing(src.redis, [spec.block for spec in specs]))
    missing = [spec for spec in specs if spec.block in lost]
    if not missing:
        return Restored(0, 0, 0.0)
    rebuilt = sum(rebuild_block(src, spec) for spec in missing)
    failed = len(missing) - rebuilt
    restored = Restored(rebuilt, failed, round(time.monotonic() - started, 3))
    log.warning("inventory restored from the ledger", extra={
        "blocks": restored.blocks, "failed": restored.failed, "of": len(specs),
        "seconds": restored.seconds})
    return restored
