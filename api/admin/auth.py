"""Who may use /admin: the one box office account of ADMIN_USERNAME / ADMIN_PASSWORD, kept
in a signed session cookie whose key is derived from JWT_SECRET."""

from __future__ import annotations

import hashlib
import hmac
import logging
from html import escape
from typing import Any

from redis.exceptions import RedisError
from sqladmin.authentication import AuthenticationBackend
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from amphi.settings import Settings
from api.state import amphi_of

log = logging.getLogger(__name__)

SESSION_COOKIE = "amphi_admin"
SESSION_SECONDS = 8 * 3600  # one box office shift


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def _digest(value: str) -> bytes:
    # Equal-length digests: compare_digest then leaks nothing, not even the length.
    return hashlib.sha256(value.encode()).digest()


def _failures_key(client: str) -> str:
    return f"amphi:admin:login-failures:{client}"


class AdminAuth(AuthenticationBackend):
    """`api_app`: the API, whose Redis counts each client's failed logins: after
    ADMIN_LOGIN_MAX_FAILURES in ADMIN_LOGIN_WINDOW_SECONDS the client is refused until the
    window ends, right password or not, in every API process alike."""

    def __init__(self, settings: Settings, api_app: Starlette, *, path: str = "/admin") -> None:
        # A key of its own, so an admin cookie is never a valid JWT signature or vice versa.
        secret = _derive(settings.jwt_secret, "amphi admin session")
        super().__init__(
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_SECONDS,
            path=path,
            same_site="strict",
            https_only=settings.app_env == "production",
        )
        self._username = _digest(settings.admin_username)
        self._password = _digest(settings.admin_password)
        # What a logged-in session carries: it changes with the password, so changing
        # ADMIN_PASSWORD ends every session.
        self._token = _derive(secret, f"{settings.admin_username}\0{settings.admin_password}")
        self._api_app = api_app
        self._max_failures = settings.admin_login_max_failures
        self._window = settings.admin_login_window_seconds

    async def login(self, request: Request) -> bool | Response:
        client = request.client.host if request.client else "unknown"
        key = _failures_key(client)
        redis = amphi_of(self._api_app).redis
        locked_for = await self._locked_for(redis, key)
        if locked_for:
            log.warning("admin login throttled", extra={"client": client})
            minutes = -(-locked_for // 60)
            return HTMLResponse(
                f"<p>Too many failed sign-ins from {escape(client)}; try again in "
                f"{minutes} minute{'s' if minutes > 1 else ''}.</p>",
                status_code=429, headers={"Retry-After": str(locked_for)})
        form = await request.form()
        username = str(form.get("username", ""))
        # Both comparisons always run, so the time says nothing about which one failed.
        user_ok = hmac.compare_digest(_digest(username), self._username)
        password_ok = hmac.compare_digest(_digest(str(form.get("password", ""))), self._password)
        if not (user_ok and password_ok):
            log.warning("admin login refused", extra={"username": username[:64],
                                                      "client": client})
            await self._count_failure(redis, key)
            return False
        await self._forget_failures(redis, key)
        request.session.clear()
        request.session["admin"] = self._token
        log.info("admin login", extra={"username": username})
        return True

    async def _locked_for(self, redis: Any, key: str) -> int:
        """Seconds until this client may try again; 0 if it may now. Without Redis the
        box office is not locked out: the attempt is judged, and logged."""
        try:
            async with redis.pipeline(transaction=False) as pipe:
                failures, ttl = await pipe.get(key).ttl(key).execute()
        except RedisError as exc:
            log.warning("admin login throttle unavailable", extra={"error": repr(exc)})
            return 0
        return max(int(ttl), 1) if failures and int(failures) >= self._max_failures else 0

    async def _count_failure(self, redis: Any, key: str) -> None:
        try:  # the window starts at the first failure: SET NX EX, then INCR keeps its TTL
            async with redis.pipeline(transaction=False) as pipe:
                await pipe.set(key, 0, ex=self._window, nx=True).incr(key).execute()
        except RedisError as exc:
            log.warning("admin login throttle unavailable", extra={"error": repr(exc)})

    async def _forget_failures(self, redis: Any, key: str) -> None:
        try:
            await redis.delete(key)
        except RedisError as exc:
            log.warning("admin login throttle unavailable", extra={"error": repr(exc)})

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return False  # to the login page

    async def authenticate(self, request: Request) -> bool:
        return hmac.compare_digest(str(request.session.get("admin", "")), self._token)
