"""Nothing under /admin answers without the box office login, a wrong password gets no
session, and no write is accepted from another site."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis
from sqlalchemy import Engine

from amphi.settings import DEV_ADMIN_PASSWORD, Settings, SettingsError
from tests._storage import redis_snapshot
from tests.admin._support import (
    LIST_PAGES,
    ORIGIN,
    PASSWORD,
    USERNAME,
    block_id,
    ledger_snapshot,
    login,
    record_sale,
)
from tests.api._support import BASE, DAY, VenueFixture, data, hold_body, running_api


def _to_login(resp: httpx.Response) -> None:
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    assert resp.headers["location"].endswith("/admin/login"), resp.headers["location"]


async def test_without_login_every_page_sends_to_login(
    client: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine
) -> None:
    record_sale(ledger_engine)
    pk = block_id(ledger_engine, "Orchestra Center", DAY)
    section = venue.sections["Orchestra Center"]
    pages = [
        "/admin/", "/admin/seat-hold",
        *(f"/admin/{identity}/list" for identity in LIST_PAGES),
        f"/admin/seat-block/edit/{pk}", f"/admin/seat-block/details/{pk}",
        f"/admin/section/edit/{section}", "/admin/venue/create",
        "/admin/order/export/csv", "/admin/amphitheater-ticket/export/json",
    ]
    for page in pages:
        _to_login(await client.get(page))
    login_page = await client.get("/admin/login")
    assert login_page.status_code == 200 and 'name="password"' in login_page.text
    assert (await client.get("/admin/statics/css/main.css")).status_code == 200


async def test_without_login_writes_change_nothing(
    client: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine,
    redis_client: redis.Redis,
) -> None:
    hold = data(await client.post(f"{BASE}/holds/create/",
                                  json=hold_body(venue.sections["Terrace"], 2)), 201)
    ledger_before, redis_before = ledger_snapshot(ledger_engine), redis_snapshot(redis_client)
    pk = block_id(ledger_engine, "Orchestra Center", DAY)
    _to_login(await client.post(f"/admin/seat-block/edit/{pk}", headers=ORIGIN,
                                data={"price_cents_override": "1.00"}))
    _to_login(await client.post(f"/admin/section/edit/{venue.sections['Lawn']}", headers=ORIGIN,
                                data={"name": "Cheap Lawn", "price_cents": "1.00"}))
    _to_login(await client.post("/admin/venue/create", headers=ORIGIN,
                                data={"slug": "x", "name": "X", "capacity": "1"}))
    _to_login(await client.delete(f"/admin/seat-block/delete?pks={pk}", headers=ORIGIN))
    _to_login(await client.post("/admin/seat-hold/release", headers=ORIGIN,
                                data={"hold_id": hold["hold_id"]}))
    assert ledger_snapshot(ledger_engine) == ledger_before
    assert redis_snapshot(redis_client) == redis_before
    still = data(await client.get(f"{BASE}/holds/{hold['hold_id']}/"))
    assert still["status"] == "active"


@pytest.mark.parametrize("username,password", [
    (USERNAME, "wrong-password"),
    ("someone", PASSWORD),
    (USERNAME, ""),
    (USERNAME, DEV_ADMIN_PASSWORD),  # the development default is not this app's password
])
async def test_wrong_credentials_are_refused(client: httpx.AsyncClient, username: str,
                                             password: str) -> None:
    resp = await login(client, username, password)
    assert resp.status_code == 400 and "Invalid credentials" in resp.text
    assert "set-cookie" not in resp.headers
    _to_login(await client.get("/admin/venue/list"))


async def test_login_and_logout(client: httpx.AsyncClient) -> None:
    resp = await login(client, USERNAME, PASSWORD)
    assert resp.status_code == 302
    cookie = resp.headers["set-cookie"]
    assert "amphi_admin=" in cookie and "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower() and "path=/admin" in cookie.lower()
    assert (await client.get("/admin/venue/list")).status_code == 200
    await client.get("/admin/logout")
    _to_login(await client.get("/admin/venue/list"))


async def test_a_forged_session_cookie_is_refused(client: httpx.AsyncClient) -> None:
    client.cookies.set("amphi_admin", "eyJhZG1pbiI6ICJ4In0=.forged.signature",
                       domain="amphi.test", path="/admin")
    _to_login(await client.get("/admin/venue/list"))


async def test_cross_site_writes_are_refused(
    admin: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine,
    redis_client: redis.Redis,
) -> None:
    hold = data(await admin.post(f"{BASE}/holds/create/",
                                 json=hold_body(venue.sections["Terrace"], 2)), 201)
    ledger_before, redis_before = ledger_snapshot(ledger_engine), redis_snapshot(redis_client)
    pk = block_id(ledger_engine, "Orchestra Center", DAY)
    for headers in ({"Origin": "http://evil.example"},
                    {"Referer": "http://evil.example/page"},
                    {"Origin": "null"},
                    {}):  # neither header: not a page of this site either
        resp = await admin.post("/admin/seat-hold/release", data={"hold_id": hold["hold_id"]},
                                headers=headers)
        assert resp.status_code == 403, (headers, resp.status_code)
        resp = await admin.post(f"/admin/seat-block/edit/{pk}", headers=headers,
                                data={"price_cents_override": "1.00", "is_active": "y"})
        assert resp.status_code == 403, (headers, resp.status_code)
    assert ledger_snapshot(ledger_engine) == ledger_before
    assert redis_snapshot(redis_client) == redis_before
    # A Referer from this site is accepted where a browser sends no Origin.
    same_site = {"Referer": "http://amphi.test/admin/seat-hold"}
    resp = await admin.post("/admin/seat-hold/release", data={"hold_id": hold["hold_id"]},
                            headers=same_site)
    assert resp.status_code == 303


def test_production_refuses_the_default_admin_password() -> None:
    production = {
        "APP_ENV": "production",
        "JWT_SECRET": "a-real-production-secret-of-at-least-32-bytes",
        "TICKET_SIGNING_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    }
    for password in (None, DEV_ADMIN_PASSWORD, "short"):
        env = dict(production)
        if password is not None:
            env["ADMIN_PASSWORD"] = password
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            Settings.from_env(env)
    settings = Settings.from_env({**production, "ADMIN_USERNAME": "boxoffice",
                                  "ADMIN_PASSWORD": "a-long-production-password"})
    assert (settings.admin_username, settings.admin_password) == (
        "boxoffice", "a-long-production-password")
    # Development keeps the admin/admin default.
    dev = Settings.from_env({})
    assert (dev.admin_username, dev.admin_password) == ("admin", DEV_ADMIN_PASSWORD)


async def test_repeated_failures_lock_the_client_out(venue: VenueFixture,
                                                     admin_settings: Settings) -> None:
    settings = admin_settings.replace(admin_login_max_failures=3, admin_login_window_seconds=2)
    async with running_api(settings, ("203.0.113.7", 40000)) as guesser, \
            running_api(settings, ("198.51.100.2", 40000)) as box_office:
        for _ in range(3):
            assert (await login(guesser, USERNAME, "guess")).status_code == 400
        locked = await login(guesser, USERNAME, PASSWORD)  # the right password, too late
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        assert "admin" not in locked.cookies.get("amphi_admin", "")
        _to_login(await guesser.get("/admin/"))
        # another client is not locked out by this one's guesses
        assert (await login(box_office, USERNAME, PASSWORD)).status_code == 302
        await asyncio.sleep(2.2)  # the window ends
        assert (await login(guesser, USERNAME, PASSWORD)).status_code == 302


async def test_a_successful_login_forgets_the_failures(venue: VenueFixture,
                                                       admin_settings: Settings) -> None:
    settings = admin_settings.replace(admin_login_max_failures=3)
    async with running_api(settings) as client:
        for _ in range(2):
            assert (await login(client, USERNAME, "typo")).status_code == 400
        assert (await login(client, USERNAME, PASSWORD)).status_code == 302
        for _ in range(2):
            assert (await login(client, USERNAME, "typo")).status_code == 400
        assert (await login(client, USERNAME, PASSWORD)).status_code == 302
