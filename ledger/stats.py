"""Ledger totals for metrics: one grouped count a table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ledger.models import Order, Scan, Ticket


async def _grouped(session: AsyncSession, column: InstrumentedAttribute[Any]) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).group_by(column))
    return {str(getattr(key, "value", key)): int(n) for key, n in rows}


async def orders_by_status(session: AsyncSession) -> dict[str, int]:
    return await _grouped(session, Order.status)


async def tickets_by_kind(session: AsyncSession) -> dict[str, int]:
    return await _grouped(session, Ticket.kind)


async def scans_by_result(session: AsyncSession) -> dict[str, int]:
    return await _grouped(session, Scan.result)
