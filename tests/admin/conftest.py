"""Fixtures of the admin tests: the API suite's migrated database and fresh venue (reused
from tests/api/conftest.py), and the app over HTTP with a box office account of its own.

Run with their own storage: TEST_REDIS_URL=redis://127.0.0.1:6379/9
TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_admin
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from amphi.settings import Settings
from tests.admin._support import PASSWORD, USERNAME, login
from tests.api._support import VenueFixture, running_api
from tests.api.conftest import (  # noqa: F401  (fixtures shared with the API suite)
    api_settings,
    ledger_engine,
    migrated_database,
    venue,
)


@pytest.fixture
def admin_settings(api_settings: Settings) -> Settings:  # noqa: F811
    return api_settings.replace(admin_username=USERNAME, admin_password=PASSWORD)


@pytest_asyncio.fixture
async def client(
    venue: VenueFixture, admin_settings: Settings  # noqa: F811
) -> AsyncIterator[httpx.AsyncClient]:
    """The app (API and admin) over HTTP, not logged in."""
    async with running_api(admin_settings) as c:
        yield c


@pytest_asyncio.fixture
async def admin(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The same client, logged in to /admin."""
    resp = await login(client, USERNAME, PASSWORD)
    assert resp.status_code == 302, resp.text
    return client
