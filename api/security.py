"""What every response says to the browser that renders it: security headers (a pure ASGI
middleware, cheap on the hot path), and the cross-origin policy (Starlette's CORS
middleware, only when CORS_ALLOWED_ORIGINS names the frontend's origins)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amphi.settings import Settings
from api.web import is_web_path

# The API answers JSON: nothing in it may load, run or be framed. The admin's pages load
# their own scripts and styles, so they only refuse to be framed.
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_HTML_CSP = (b"content-security-policy", b"frame-ancestors 'none'")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def web_csp(stripe: bool) -> tuple[bytes, bytes]:
    """The fan app's and gate page's policy: their own scripts, styles and API only, images
    from here and `data:` (the tickets' QR codes), the camera's `blob:` streams; Stripe's
    script, frames and API only when Stripe takes the payments."""
    script, connect, frame = "'self'", "'self'", "'none'"
    if stripe:
        script += " https://js.stripe.com"
        connect += " https://api.stripe.com"
        frame = "https://js.stripe.com https://hooks.stripe.com"
    policy = (f"default-src 'self'; script-src {script}; style-src 'self'; "
              f"img-src 'self' data:; connect-src {connect}; frame-src {frame}; "
              "media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")
    return (b"content-security-policy", policy.encode())

# What a browser frontend on another origin may send and read (the public API's headers).
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Admission-Token",
                        "X-Guest-Id", "X-Request-Id"]
CORS_RESPONSE_HEADERS = ["X-Request-Id", "Retry-After", "ETag"]


class SecurityHeaders:
    """Adds the headers above to every HTTP response (none of ours sets them itself): the
    API's policy, the admin's under `admin_path`, the web pages' (api/web.py) with
    `web_policy`; HSTS too when the service is served over HTTPS (`hsts`, production). On
    the hot path: a prefix test, one extend."""

    def __init__(self, app: ASGIApp, *, hsts: bool, web_policy: tuple[bytes, bytes],
                 admin_path: str = "/admin") -> None:
        self.app = app
        common = [*_COMMON, _HSTS] if hsts else list(_COMMON)
        self.api_headers, self.admin_headers = [*common, _API_CSP], [*common, _HTML_CSP]
        self.web_headers = [*common, web_policy]
        self.admin_path = admin_path

    def _headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith("/api/"):
            return self.api_headers
        if path.startswith(self.admin_path):
            return self.admin_headers
        return self.web_headers if is_web_path(path) else self.api_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors(settings: Settings) -> list[Middleware]:
    """The CORS middleware for the configured origins; none (no cross-origin access, and
    preflights refused) when CORS_ALLOWED_ORIGINS is empty, the default. Bearer tokens, not
    cookies, authenticate fans, so credentials are never allowed cross-origin."""
    if not settings.cors_allowed_origins:
        return []
    return [Middleware(CORSMiddleware, allow_origins=list(settings.cors_allowed_origins),
                       allow_methods=["GET", "POST"], allow_headers=CORS_REQUEST_HEADERS,
                       expose_headers=CORS_RESPONSE_HEADERS, allow_credentials=False,
                       max_age=600)]
