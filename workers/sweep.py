"""The hold sweeper: returns expired holds' seats to sale in blocks nobody touches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine import blocks
from ledger.orders import expire_abandoned
from workers import context

# A payment may still be on its way when the hold expires (3-D Secure, a slow bank).
PAYMENT_GRACE = timedelta(minutes=15)


def sweep_expired_holds() -> int:
    """RQ job, run every SWEEP_INTERVAL_SECONDS by the worker's cron. Safe to run twice."""
    return blocks.sweep(context.hold_redis())


def expire_abandoned_orders() -> int:
    """RQ job, run every minute: pending orders whose hold and grace have passed expire."""
    ttl = timedelta(seconds=context.settings().hold_ttl_seconds)
    with context.sessions().begin() as session:
        return expire_abandoned(session, created_before=datetime.now(UTC) - ttl - PAYMENT_GRACE)
