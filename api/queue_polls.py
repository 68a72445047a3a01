"""A fan's poll of their place in the waiting room (`GET /api/queue/status/`), answered
before Starlette's exception middleware, router, Request and response objects.

60,000 fans polling every 5 s are 12,000 polls a second, each of which is a signature check
and a little arithmetic (services/waiting_room.py): the framework around it cost more than
the poll. Measured with loadtests/bench_queue.py in one session on a 2-core machine, 2 API
processes: 16,242 polls/s through the routed endpoint (96 µs of API CPU each), 23,501 here
(65 µs) (docs/waiting-room.md, docs/changelog.md).

Only a poll that succeeds is answered here. Anything else (no ticket, a forged one, a closed
room, Redis down) goes on to the routed endpoint (api/queue.py), which asks again and answers
the error as every endpoint does (api/errors.py): errors are still mapped in one place. The
middlewares outside this one (request id and access line, security headers, CORS) apply to a
poll as to any request. Replace with a plain route if the framework's cost ever drops to the
poll's own.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.state import amphi_of

STATUS_PATH = "/api/queue/status/"
_JSON = (b"content-type", b"application/json")


def queue_ticket(query_string: bytes) -> str:
    """The `queue_ticket` parameter, as Starlette's query_params would read it."""
    values = parse_qs(query_string.decode("latin-1")).get("queue_ticket")
    return values[-1] if values else ""


class QueuePolls:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != STATUS_PATH
                or scope["method"] != "GET"):
            await self.app(scope, receive, send)
            return
        ticket = queue_ticket(scope["query_string"])
        try:
            status = await amphi_of(scope["app"]).waiting_room.status(ticket) if ticket else None
        except Exception:  # the routed endpoint asks again and answers the error
            status = None
        if status is None:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"success": True, "data": status.as_json()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [_JSON, (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
