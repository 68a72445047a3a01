"""The hold sweeper: returns expired holds' seats to sale in blocks nobody touches."""

from __future__ import annotations

from engine import blocks
from workers import context


def sweep_expired_holds() -> int:
    """RQ job, run every SWEEP_INTERVAL_SECONDS by the worker's cron. Safe to run twice."""
    return blocks.sweep(context.hold_redis())
