"""The one place worker jobs get their clients from: built on first use in the worker
process (never at import), from the same Settings as everything else."""

from __future__ import annotations

from functools import cache

import redis

from amphi.settings import Settings
from engine import scripts
from engine.connection import sync_client


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def hold_redis() -> redis.Redis:
    client = sync_client(settings().redis_url)
    scripts.load_all(client)
    return client


@cache
def queue_redis() -> redis.Redis:
    return sync_client(settings().rq_url)
