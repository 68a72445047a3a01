"""Engines and sessions. Made by whoever needs them (app lifespan, CLI, worker), never at
import time. Ledger functions take a session and never commit: the caller owns it."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker


def sync_engine(database_url: str) -> Engine:
    return create_engine(database_url, pool_pre_ping=True)


def async_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(database_url, pool_pre_ping=True, pool_size=pool_size)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
