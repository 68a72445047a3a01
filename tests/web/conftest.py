"""Fixtures of the browser tests: the real app served by uvicorn (`amphi serve`'s options)
on this suite's own storage, and Chromium driven by Playwright.

Isolation: the hold engine uses Redis db 14 (TEST_WEB_REDIS_URL), RQ db 4 (TEST_WEB_RQ_DB),
the ledger the database `amphi_test_web` (TEST_WEB_DATABASE_URL). The browser is Debian's
`chromium` (no browser download is possible here): found with `shutil.which`, or
CHROMIUM_PATH; without one the suite is skipped with the reason. The gates' clock is fixed
at the first show day (tests/scan/_live_app.py), as a steward at the gate sees it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Engine

from amphi.settings import Settings
from runtime import devservices
from tests._servers import amphi_env, redis_db_url, uvicorn_server
from tests._storage import flushed_redis, migrated_ledger, own_services
from tests.api._support import VenueFixture, build_venue
from tests.payments._support import SECRET_KEY
from tests.payments.conftest import localstripe  # noqa: F401  (a fixture: Stripe, locally)
from tests.scan._support import TEST_SIGNING_KEY

WEB_REDIS_URL = os.environ.get("TEST_WEB_REDIS_URL", "redis://127.0.0.1:6379/14")
WEB_RQ_DB = int(os.environ.get("TEST_WEB_RQ_DB", "4"))
WEB_DATABASE_URL = os.environ.get(
    "TEST_WEB_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_web")
GATE_NOW = "2027-06-19T18:30:00-07:00"  # the first show day, at the venue, as doors open
STRIPE_PUBLISHABLE_KEY = "pk_test_amphi_web"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Overrides tests/conftest.py: this suite's own Redis db and database."""
    with own_services(WEB_REDIS_URL, WEB_DATABASE_URL) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/conftest.py: demo payments, a fixed signing key."""
    return Settings(
        app_env="test",
        redis_url=services.redis_url,
        rq_redis_url=redis_db_url(services.redis_url, WEB_RQ_DB),
        database_url=services.database_url,
        hold_rate_limit_per_minute=0,
        log_level="WARNING",
        log_format="text",
        outbox_dir=str(tmp_path_factory.mktemp("outbox")),
        ticket_signing_key=TEST_SIGNING_KEY,
    )


@pytest.fixture(scope="session")
def ledger_engine(settings: Settings) -> Iterator[Engine]:
    with migrated_ledger(settings.database_url) as engine:
        yield engine


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    with flushed_redis(settings.redis_url) as client:
        yield client


@pytest.fixture
def venue(ledger_engine: Engine, redis_client: redis.Redis) -> VenueFixture:
    return build_venue(ledger_engine, redis_client)


def _serve(settings: Settings, tmp: Path, **env: str) -> Iterator[str]:
    with uvicorn_server("tests.scan._live_app:app_from_env", log_dir=tmp, env=amphi_env(
            settings, SCAN_TEST_NOW=GATE_NOW, HOLD_RATE_LIMIT_PER_MINUTE="0",
            # one guest sells a section out in the sold-out journey
            HOLD_MAX_ACTIVE_PER_OWNER="500", SECTIONS_CACHE_SECONDS="1", **env)) as url:
        yield url


@pytest.fixture
def server(settings: Settings, venue: VenueFixture, tmp_path: Path) -> Iterator[str]:
    """The app, demo mode, holds of 10 minutes: its base URL."""
    yield from _serve(settings, tmp_path)


@pytest.fixture
def short_hold_server(settings: Settings, venue: VenueFixture,
                      tmp_path: Path) -> Iterator[str]:
    """The same with holds of 4 seconds, to watch one expire."""
    yield from _serve(settings, tmp_path, HOLD_TTL_SECONDS="4")


@pytest.fixture
def stripe_server(settings: Settings, venue: VenueFixture, tmp_path: Path,
                  localstripe: str) -> Iterator[str]:  # noqa: F811
    """The app taking payments through Stripe (localstripe, a Stripe-compatible server)."""
    yield from _serve(settings, tmp_path, STRIPE_SECRET_KEY=SECRET_KEY,
                      STRIPE_PUBLISHABLE_KEY=STRIPE_PUBLISHABLE_KEY, STRIPE_API_BASE=localstripe)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if chromium_path() is None:
        pytest.skip("no Chromium here (apt-get install chromium, or set CHROMIUM_PATH)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # a fake camera (a test pattern) that needs no permission prompt: the gate page's scanner
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=[
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh phone-sized page (mobile first); a console error (a script error, a blocked
    resource, a Content-Security-Policy violation) fails the test."""
    # the browser where the fans and stewards are: at the venue
    context = browser.new_context(viewport=PHONE, timezone_id="America/Los_Angeles")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    # the answers a journey provokes on purpose (Chromium logs each as a console error)
    expected = ("409", "403", "410", "422", "429")
    unexpected = [e for e in errors if not any(f"status of {s}" in e for s in expected)]
    assert not unexpected, unexpected
