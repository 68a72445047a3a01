"""What load balancers and Prometheus ask: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from rq import Queue
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from amphi import errors, metrics
from api.state import amphi
from engine import scripts, waiting_room
from engine.stats import block_stats
from ledger import stats
from services import queueing

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving; says nothing about its dependencies."""
    return JSONResponse({"status": "ok"})


async def _redis(request: Request) -> None:
    client = amphi(request).redis
    await client.ping()
    if not all(await client.script_exists(*(s.sha for s in scripts.all_scripts()))):
        # After a SCRIPT FLUSH or a failover: load them now rather than on first use.
        await scripts.aload_all(client)
        log.warning("readiness reloaded the Lua scripts")


async def _rq_redis(request: Request) -> None:
    queue: Queue = amphi(request).queue
    await run_in_threadpool(queue.connection.ping)


async def _database(request: Request) -> None:
    async with amphi(request).sessions() as session:
        await session.execute(text("SELECT 1"))


async def _inventory(request: Request) -> None:
    """Every seat block of the ledger is in Redis: after Redis lost its data the worker
    restores them (services/inventory.py), and until then this process is not ready."""
    state = amphi(request)
    blocks = state.catalog.blocks()
    if missing := await state.holds.missing(blocks):
        raise errors.InventoryUnavailable(
            f"{len(missing)} of {len(blocks)} seat blocks are missing in Redis; "
            "the worker restores them from the ledger")


CHECKS: dict[str, Callable[[Request], Awaitable[None]]] = {
    "redis": _redis,
    "inventory": _inventory,
    "rq_redis": _rq_redis,
    "database": _database,
}


async def _check(name: str, request: Request) -> str:
    try:
        await asyncio.wait_for(CHECKS[name](request), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g}s"
    except errors.DomainError as exc:
        return exc.message[:300]
    except Exception as exc:  # any failure means "not ready"; say which, without a trace
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


async def readyz(request: Request) -> JSONResponse:
    """200 when Redis (scripts loaded), RQ's Redis and the database all answer, else 503."""
    names = list(CHECKS)
    results = dict(zip(names, await asyncio.gather(*(_check(n, request) for n in names)),
                       strict=True))
    ready = all(r == "ok" for r in results.values())
    if not ready:
        log.warning("not ready", extra={"checks": results})
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results},
                        status_code=200 if ready else 503)


def _queues(queue: Queue) -> tuple[dict[str, int], dict[str, int], metrics.FinalizeLatency,
                                   tuple[int, int]]:
    """Jobs waiting, and jobs failed for good, in each of our queues; the workers' latency
    histogram and inventory restores (kept beside the queues)."""
    waiting, failed = {}, {}
    for name in queueing.QUEUES:
        q = Queue(name, connection=queue.connection)
        waiting[name], failed[name] = q.count, q.failed_job_registry.count
    return (waiting, failed, metrics.read_finalize_latency(queue.connection),
            metrics.read_inventory_restores(queue.connection))


async def prometheus(request: Request) -> Response:
    state = amphi(request)
    async with state.sessions() as session:
        orders = await stats.orders_by_status(session)
        tickets = await stats.tickets_by_kind(session)
        scans = await stats.scans_by_result(session)
    blocks = await block_stats(state.redis)
    rooms = [(day, await waiting_room.state(state.redis, day))
             for day in await waiting_room.open_rooms(state.redis)]
    waiting, failed, latency, restores = await run_in_threadpool(_queues, state.queue)
    totals = metrics.Totals(
        orders_by_status=orders,
        tickets_by_kind=tickets,
        scans_by_result=scans,
        queue_depth=waiting,
        queue_failed=failed,
        finalize_latency=latency,
        inventory_restores=restores,
        holds_expired=sum(b.expired for b in blocks),
        inventory=[(b.block.event_date.isoformat(), b.block.section, b.counts.available,
                    b.counts.held, b.counts.sold) for b in blocks],
        rooms=[metrics.RoomTotals(day.isoformat(), r.state, r.waiting, r.admitted, r.active,
                                  r.turns_expired) for day, r in rooms if r is not None],
    )
    return Response(metrics.render(totals), media_type=metrics.CONTENT_TYPE)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
