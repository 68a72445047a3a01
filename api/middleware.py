"""Request ids and access logs, as a pure ASGI middleware (cheap on the hot path)."""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amphi import logs

log = logging.getLogger("api.access")

# Request ids: 32 hex digits, a random prefix for this process and a counter, unique without
# a system call for randomness on every request.
_ID_PREFIX = secrets.token_hex(10)
_ID_COUNTER = itertools.count(1)


def _reseed() -> None:  # a forked child must not repeat its parent's ids
    global _ID_PREFIX
    _ID_PREFIX = secrets.token_hex(10)


os.register_at_fork(after_in_child=_reseed)


def _new_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else _new_id()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with logs.request_scope(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                logs.info(log, logs.event() or "request", {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                })
