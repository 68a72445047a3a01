"""The one place worker jobs get their clients from: built on first use in the worker
process (never at import), from the same Settings as everything else."""

from __future__ import annotations

from functools import cache

import redis
from rq import Queue
from sqlalchemy.orm import sessionmaker

from amphi.payments import PaymentGateway, gateway
from amphi.settings import Settings
from amphi.signing import Signer, load_signer
from engine import scripts
from engine.transport.connection import queue_client, sync_client
from ledger.db import session_factory, sync_engine


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def hold_redis() -> scripts.Client:
    client = sync_client(settings().redis_url)
    scripts.load_all(client)
    return client


@cache
def queue_redis() -> redis.Redis:
    return queue_client(settings().rq_url)


@cache
def sessions() -> sessionmaker:
    return session_factory(sync_engine(settings().database_url))


@cache
def payments() -> PaymentGateway:
    return gateway(settings())


@cache
def signer() -> Signer:
    s = settings()
    return load_signer(s.ticket_signing_key, s.ticket_signing_key_file)


def queue(name: str) -> Queue:
    return Queue(name, connection=queue_redis())
