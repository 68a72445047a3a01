"""What the API's handlers use, made once per process by the app's lifespan (api/app.py)
and read through `amphi(request)`: one typed object instead of loose attributes on
`app.state`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq import Queue
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import sessionmaker
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from amphi.outages import Outage
from amphi.settings import Settings
from amphi.signing import Signer
from api.http_cache import Loader
from engine.holds import HoldEngine
from ledger.catalog import Catalog
from services.checkout import Purchases
from services.waiting_room import WaitingRoom


@dataclass(frozen=True, slots=True)
class Outages:
    """What this process logs once per outage (amphi/outages.py), by dependency."""
    redis: Outage  # the hold engine's
    database: Outage
    queue: Outage  # RQ's Redis


@dataclass(slots=True)
class Amphi:
    settings: Settings
    clock: Callable[[], datetime]  # timezone-aware now: what day it is at the gates
    redis: Any  # the engine's async client (redis.asyncio.Redis or WaitingRedisCluster)
    holds: HoldEngine
    catalog: Catalog  # replaced when the catalog refreshes or the admin edits the venue
    sections_cache: Loader
    seat_map_cache: Loader
    db: AsyncEngine
    sessions: async_sessionmaker[Any]
    sync_sessions: sessionmaker[Any]  # the scanner's and the admin's synchronous work
    signer: Signer
    queue: Queue  # finalisation's RQ queue
    purchases: Purchases
    waiting_room: WaitingRoom
    outages: Outages


def amphi(request: HTTPConnection) -> Amphi:
    return amphi_of(request.app)


def amphi_of(app: Starlette) -> Amphi:
    services: Amphi = app.state.amphi
    return services
