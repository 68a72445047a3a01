"""Who may use /admin: the one box office account of ADMIN_USERNAME / ADMIN_PASSWORD, kept
in a signed session cookie whose key is derived from JWT_SECRET."""

from __future__ import annotations

import hashlib
import hmac
import logging

from sqladmin.authentication import AuthenticationBackend
from starlette.requests import Request

from amphi.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "amphi_admin"
SESSION_SECONDS = 8 * 3600  # one box office shift


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def _digest(value: str) -> bytes:
    # Equal-length digests: compare_digest then leaks nothing, not even the length.
    return hashlib.sha256(value.encode()).digest()


class AdminAuth(AuthenticationBackend):
    def __init__(self, settings: Settings, *, path: str = "/admin") -> None:
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

    async def login(self, request: Request) -> bool:
        form = await request.form()
        username = str(form.get("username", ""))
        # Both comparisons always run, so the time says nothing about which one failed.
        user_ok = hmac.compare_digest(_digest(username), self._username)
        password_ok = hmac.compare_digest(_digest(str(form.get("password", ""))), self._password)
        if not (user_ok and password_ok):
            log.warning("admin login refused", extra={"username": username[:64]})
            return False
        request.session.clear()
        request.session["admin"] = self._token
        log.info("admin login", extra={"username": username})
        return True

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return False  # to the login page

    async def authenticate(self, request: Request) -> bool:
        return hmac.compare_digest(str(request.session.get("admin", "")), self._token)
