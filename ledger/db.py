"""Engines and sessions. Made by whoever needs them (app lifespan, CLI, worker), never at
import time. Ledger functions take a session and never commit: the caller owns it."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker


def sync_engine(database_url: str, *, pre_ping: bool = True) -> Engine:
    """`pre_ping=False` for the API's, as `async_engine` says why (its finalisation batches
    fall back to one order at a time, and a failed one is answered 503)."""
    return create_engine(database_url, pool_pre_ping=pre_ping)


def async_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The API's engine. No ping before each use: the API's reads and writes are single
    statements, and a ping doubled their round trips; in the on-sale spike (2,000 fans, 2 API
    processes) it cost checkout and confirm a quarter of their p95. When PostgreSQL restarts,
    the first statement on each stale connection fails as an outage (503, which clients and
    Stripe retry), and SQLAlchemy then drops the whole pool (tests/faults: PostgreSQL stopped
    mid-checkout and for 20 s)."""
    return create_async_engine(database_url, pool_size=pool_size)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
