"""Fixtures of the fault drills: each drill runs real servers (a private redis-server or
PostgreSQL that it may kill, stop or slow, TCP proxies that it may cut) beside this suite's
own storage.

Isolation. The hold engine uses Redis db 7 (TEST_FAULTS_REDIS_URL), RQ db 6
(TEST_FAULTS_RQ_DB), the ledger the database `amphi_test_faults` (TEST_FAULTS_DATABASE_URL);
the machine's shared servers are never stopped. The per-test fixtures (a flushed Redis, a
fresh venue, the app) are the payment suite's, run over this storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from amphi.settings import Settings
from runtime import devservices
from tests._servers import redis_db_url
from tests._storage import own_services
from tests.payments._support import REPO
from tests.payments.conftest import (  # noqa: F401  (the payment suite's fixtures, over this storage)
    demo_settings,
    ledger_engine,
    open_api,
    queue,
    redis_client,
    rq_redis,
    venue,
)

FAULTS_REDIS_URL = os.environ.get("TEST_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/7")
FAULTS_RQ_DB = int(os.environ.get("TEST_FAULTS_RQ_DB", "6"))
FAULTS_DATABASE_URL = os.environ.get(
    "TEST_FAULTS_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_faults",
)


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Overrides tests/conftest.py: this suite's own Redis db and database."""
    with own_services(FAULTS_REDIS_URL, FAULTS_DATABASE_URL) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/conftest.py. A signing key in a file: the app, the workers and the
    `amphi reconcile` that ends each drill sign alike."""
    return Settings(
        ticket_signing_key_file=str(tmp_path_factory.mktemp("keys") / "signing"),
        app_env="test",
        redis_url=services.redis_url,
        rq_redis_url=redis_db_url(services.redis_url, FAULTS_RQ_DB),
        database_url=services.database_url,
        hold_ttl_seconds=600,
        hold_rate_limit_per_minute=0,
        log_level="WARNING",
        log_format="text",
        outbox_dir=str(REPO / ".embedded" / "test" / "outbox-unused"),
    )
