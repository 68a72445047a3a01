"""The ceilings of the HTTP benchmark: what this server can do at all, served exactly as the
API is (runtime/serving.py: uvicorn, uvloop with batched accepts, httptools, no access log,
same process count).

* ``GET /noop``: a bare Starlette endpoint that answers a constant JSON body.
* ``GET /evalsha``: the same, after one trivial ``EVALSHA`` (``return 1``) on the same
  Redis, through the same kind of client as the API (engine/transport/connection.py, a blocking
  pool of REDIS_MAX_CONNECTIONS). The issue's ceiling: what the targets are measured
  against.
* ``GET /evalsha-ap``: the same EVALSHA through the API's auto-pipeline
  (engine/transport/autopipeline.py), for reference: the same transport as the hold endpoint.

    amphi serve --app loadtests.ceiling_app:create_app --workers 2
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi.settings import Settings
from engine.transport.autopipeline import AutoPipeline
from engine.transport.connection import async_client

TRIVIAL = "return 1"


async def noop(request: Request) -> JSONResponse:
    return JSONResponse({"success": True})


async def evalsha(request: Request) -> JSONResponse:
    state = request.app.state
    await state.redis.evalsha(state.sha, 0)
    return JSONResponse({"success": True})


async def evalsha_autopipelined(request: Request) -> JSONResponse:
    state = request.app.state
    await state.pipeline.evalsha(state.sha, 0)
    return JSONResponse({"success": True})


def create_app() -> Starlette:
    settings = Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.redis = async_client(settings.redis_url,
                                       max_connections=settings.redis_max_connections)
        app.state.pipeline = AutoPipeline(app.state.redis)
        app.state.sha = await app.state.redis.script_load(TRIVIAL)
        try:
            yield
        finally:
            await app.state.pipeline.aclose()
            await app.state.redis.aclose()

    return Starlette(
        routes=[Route("/noop", noop), Route("/evalsha", evalsha),
                Route("/evalsha-ap", evalsha_autopipelined)],
        lifespan=lifespan,
    )
