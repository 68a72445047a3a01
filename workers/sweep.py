"""The maintenance jobs: the hold sweeper returns expired holds' seats to sale in blocks
nobody touches, the restorer rebuilds the blocks Redis lost, and pending orders whose fan
walked away expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amphi import metrics
from engine import blocks
from ledger.orders import expire_abandoned
from services import inventory, queueing, reconcile
from workers import context

# A payment may still be on its way when the hold expires (3-D Secure, a slow bank).
PAYMENT_GRACE = timedelta(minutes=15)


def sweep_expired_holds() -> int:
    """RQ job, run every SWEEP_INTERVAL_SECONDS by the worker's cron. Safe to run twice."""
    return blocks.sweep(context.hold_redis())


def restore_lost_blocks() -> int:
    """RQ job, run every SWEEP_INTERVAL_SECONDS by the worker's cron: the seat blocks Redis
    lost are rebuilt from the ledger (services/inventory.py). Safe to run twice."""
    src = reconcile.sources(context.hold_redis(), context.sessions(), context.payments(),
                            context.queue(queueing.DEFAULT), context.signer())
    restored = inventory.restore_missing_blocks(src)
    if restored.blocks:
        metrics.record_inventory_restore(context.queue_redis(), restored.blocks)
    return restored.blocks


def expire_abandoned_orders() -> int:
    """RQ job, run every minute: pending orders whose hold and grace have passed expire."""
    ttl = timedelta(seconds=context.settings().hold_ttl_seconds)
    with context.sessions().begin() as session:
        return expire_abandoned(session, created_before=datetime.now(UTC) - ttl - PAYMENT_GRACE)
