"""What the API says to browsers: JSON endpoints take JSON only (a cross-site form or a
text/plain body needs no CORS preflight, so accepting one would let any web page make its
visitors hold seats), the cross-origin policy is the configured one, and every response
carries the security headers."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests._storage import redis_snapshot
from tests.api._support import BASE, VenueFixture, assert_error, hold_body

CREATE = f"{BASE}/holds/create/"
JSON_ENDPOINTS = [CREATE, f"{BASE}/check-availability/", "/api/payments/amphitheater/checkout/",
                  "/api/payments/amphitheater/confirm/"]
FRONTEND = "https://tickets.pacific-amphitheatre.example"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_json_endpoints_refuse_other_content_types(
        api: httpx.AsyncClient, venue: VenueFixture, redis_client: redis.Redis, path: str,
        content_type: str | None) -> None:
    body = httpx.Request("POST", "/", json=hold_body(venue.sections["Orchestra Center"], 2)).content
    before = redis_snapshot(redis_client)
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await api.post(path, content=body, headers=headers)
    assert_error(resp, 415, "unsupported_media_type")
    assert "application/json" in resp.json()["error"]["message"]
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON"])
async def test_json_with_or_without_a_charset_is_taken(api: httpx.AsyncClient,
                                                        venue: VenueFixture,
                                                        content_type: str) -> None:
    body = httpx.Request("POST", "/", json=hold_body(venue.sections["Orchestra Center"], 2)).content
    resp = await api.post(CREATE, content=body, headers={"Content-Type": content_type})
    assert resp.status_code == 201, resp.text


async def test_security_headers_on_answers_and_errors(api: httpx.AsyncClient,
                                                      venue: VenueFixture) -> None:
    for resp in (await api.get(f"{BASE}/event-dates/"),
                 await api.post(CREATE, json=hold_body(venue.sections["Orchestra Center"], 2)),
                 await api.get("/api/no-such-thing/"),
                 await api.get("/readyz")):
        assert resp.headers["x-content-type-options"] == "nosniff", resp.url
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert resp.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in resp.headers  # not HTTPS: development


async def test_admin_pages_may_run_their_own_scripts_but_not_be_framed(
        api: httpx.AsyncClient) -> None:
    resp = await api.get("/admin/login")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert resp.headers["x-frame-options"] == "DENY"


async def test_the_web_app_runs_its_own_scripts_only(api: httpx.AsyncClient, open_api) -> None:
    """The fan app and the gate page (api/web.py): scripts, styles and connections of this
    origin only, the QR codes' data: images; Stripe's only when Stripe takes payments."""
    for path in ("/", "/gate/", "/app/index.html"):
        resp = await api.get(path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        policy = dict(p.strip().split(" ", 1) for p in
                      resp.headers["content-security-policy"].split(";"))
        assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
        assert policy["img-src"] == "'self' data:" and policy["frame-ancestors"] == "'none'"
        assert "stripe" not in resp.headers["content-security-policy"]
        assert resp.headers["x-frame-options"] == "DENY"
    config = await api.get("/api/config/")
    assert config.json()["data"] == {"demo_mode": True, "stripe_publishable_key": "",
                                     "hold_ttl_seconds": 600}
    assert config.headers["content-security-policy"] == API_CSP
    assert (await api.get("/app/../amphi/settings.py")).status_code == 404
    async with open_api(stripe_secret_key="sk_test_x", stripe_publishable_key="pk_test_y",
                        stripe_webhook_secret="whsec_x") as stripe_api:
        page = await stripe_api.get("/")
        assert "script-src 'self' https://js.stripe.com" in page.headers["content-security-policy"]
        assert (await stripe_api.get("/api/config/")).json()["data"] == {
            "demo_mode": False, "stripe_publishable_key": "pk_test_y", "hold_ttl_seconds": 600}


async def test_production_adds_hsts(open_api) -> None:
    async with open_api(app_env="production", jwt_secret="x" * 40,
                        admin_password="a-long-box-office-password") as api:
        resp = await api.get(f"{BASE}/event-dates/")
    assert resp.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_no_cross_origin_access_by_default(api: httpx.AsyncClient) -> None:
    preflight = await api.options(CREATE, headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers
    resp = await api.get(f"{BASE}/event-dates/", headers={"Origin": FRONTEND})
    assert "access-control-allow-origin" not in resp.headers


async def test_the_configured_frontend_may_call_the_api(open_api, venue: VenueFixture) -> None:
    async with open_api(cors_allowed_origins=(FRONTEND,)) as api:
        preflight = await api.options(CREATE, headers={
            "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key, authorization"})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"content-type", "idempotency-key", "authorization"} <= {
            h.strip() for h in allowed.split(",")}
        assert "access-control-allow-credentials" not in preflight.headers

        resp = await api.post(CREATE, json=hold_body(venue.sections["Orchestra Center"], 2),
                              headers={"Origin": FRONTEND})
        assert resp.status_code == 201
        assert resp.headers["access-control-allow-origin"] == FRONTEND
        assert "x-request-id" in resp.headers["access-control-expose-headers"].lower()

        other = await api.options(CREATE, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
