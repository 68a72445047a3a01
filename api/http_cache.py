"""Short shared caching of a rendered JSON response, and the HTTP headers that go with it.

When every fan polls availability, each API process renders a given answer at most once
per TTL: async-lru keeps the rendered body for `ttl` seconds and makes concurrent misses
share one load (single-flight), so a burst costs one Redis round trip. Clients and
proxies get `Cache-Control: max-age` matching the TTL and an ETag, so a poll with
`If-None-Match` is answered 304 without a body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from async_lru import alru_cache
from starlette.requests import Request
from starlette.responses import Response

MAX_ENTRIES = 256  # (venue, date) pairs are few; the bound only guards against surprises


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str  # quoted, as the header carries it

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        return cls(body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')


Loader = Callable[..., Coroutine[Any, Any, Rendered]]  # alru_cache takes coroutine functions


def shared(load: Loader, ttl_seconds: int) -> Loader:
    """`load`, cached per argument tuple for `ttl_seconds` with concurrent misses coalesced;
    `load` itself when the TTL is 0. Failures are not cached."""
    if ttl_seconds <= 0:
        return load
    return alru_cache(maxsize=MAX_ENTRIES, ttl=ttl_seconds)(load)


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): a W/ prefix does not matter for a GET.
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def respond(request: Request, rendered: Rendered, ttl_seconds: int) -> Response:
    headers = {
        "etag": rendered.etag,
        "cache-control": f"public, max-age={ttl_seconds}" if ttl_seconds > 0 else "no-cache",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)
