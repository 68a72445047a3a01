"""The worker processes that `amphi worker` runs, and the cron that enqueues the sweeps."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from redis import exceptions as redis_errors
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers
from rq.worker_pool import ForkProcess, WorkerPool
from rq.worker_pool import run_worker as rq_run_worker
from sqlalchemy.exc import OperationalError

from amphi import logs
from amphi.settings import Settings
from engine.transport.connection import queue_client
from services.queueing import DEFAULT, EMAIL, MAINTENANCE, QUEUES
from workers.jobs import OrdersNotFinalised
from workers.sweep import expire_abandoned_orders, restore_lost_blocks, sweep_expired_holds

log = logging.getLogger(__name__)

# A job that failed on one of these met an outage, not a bug: RQ retries it.
UNREACHABLE = (OperationalError, redis_errors.ConnectionError, redis_errors.TimeoutError)


def met_an_outage(exc: BaseException | None) -> bool:
    """`exc` says only that PostgreSQL or Redis did not answer (for a batch: each order)."""
    if isinstance(exc, OrdersNotFinalised):
        return all(isinstance(e, UNREACHABLE) for e in exc.failed.values())
    return isinstance(exc, UNREACHABLE)


def run_cron(settings: Settings) -> None:
    """RQ's own scheduler: enqueues the sweep every SWEEP_INTERVAL_SECONDS. RQ's loop ends
    at the first Redis error; a restart of RQ's Redis must not end the sweeps for good, so
    it starts again (one warning line a second while Redis is away)."""
    _configure_logs(settings)
    while True:
        try:
            _cron(settings).start()
            return  # stopped on request (SIGTERM, SIGINT)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            log.warning("the cron lost RQ's Redis; starting again", extra={"error": str(exc)})
            time.sleep(1)


def _cron(settings: Settings) -> CronScheduler:
    cron = CronScheduler(connection=queue_client(settings.rq_url), name="amphi-cron")
    cron.register(
        sweep_expired_holds,
        queue_name=MAINTENANCE,
        interval=settings.sweep_interval_seconds,
        # A sweep that waited longer than its interval is stale: the next one replaces it.
        ttl=max(settings.sweep_interval_seconds * 2, 10),
        result_ttl=60,
        failure_ttl=3600,
    )
    # Looks for blocks Redis lost as often as the sweep runs: a few EXISTS when none is.
    cron.register(restore_lost_blocks, queue_name=MAINTENANCE,
                  interval=settings.sweep_interval_seconds,
                  ttl=max(settings.sweep_interval_seconds * 2, 10))
    cron.register(expire_abandoned_orders, queue_name=MAINTENANCE, interval=60, ttl=120,
                  result_ttl=60, failure_ttl=3600)
    return cron


def _configure_logs(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    if settings.log_level != "DEBUG":
        # RQ logs three INFO lines for every sweep, every few seconds; our jobs log their own.
        for name in ("rq.worker", "rq.cron", "rq.scheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


class AmphiWorker(SimpleWorker):
    """RQ's worker that runs each job in its own process, not in a forked work horse: a fork
    per job, and new Redis and PostgreSQL connections in each, held finalisation to about
    5 orders a second. A job that hangs is still stopped by its timeout (SIGALRM), and a
    killed worker's job is retried once its timeout and a margin have passed; the registry
    cleanup that notices runs every 15 s instead of RQ's 10 minutes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_SECONDS)
        # An idle worker waits for a job at most worker_ttl - 15 s, and only notices
        # abandoned jobs between waits: RQ's 420 s left a killed worker's job for 7 minutes.
        kwargs.setdefault("worker_ttl", WORKER_TTL_SECONDS)
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a started job may go without news before it counts as abandoned (and is
        retried): its timeout, when SIGALRM stops it, and a margin. RQ adds a minute."""
        if not job.timeout or job.timeout < 0:
            return super().get_heartbeat_ttl(job, working_time)
        return int(job.timeout) + HEARTBEAT_MARGIN_SECONDS

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """RQ logs every failed job with its traceback. While PostgreSQL or Redis is away
        every job fails alike, and that is an outage, not a bug: a warning line without the
        traceback (identical ones held back by logs.RepeatLimit), and RQ's retry as usual."""
        exc = exc_info[1]
        if not met_an_outage(exc):
            super().handle_exception(job, *exc_info)
            return
        log.warning("job failed: a dependency is unreachable; it will be retried",
                    extra={"job_id": job.id, "queue": job.origin,
                           "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]})
        call_exception_handlers(self._exc_handlers, job, *exc_info)

    def subscribe(self) -> None:
        """RQ's, with a 1 s poll: its thread waits up to `sleep_time` for a command (RQ uses
        60 s), and redis-py 8 joins that thread at shutdown, so every stop took a minute."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        # rq's Worker sets pubsub_thread = None unannotated, so mypy takes its type as None
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)


MAINTENANCE_INTERVAL_SECONDS = 15
WORKER_TTL_SECONDS = 30
HEARTBEAT_MARGIN_SECONDS = 10
EMAIL_NICENESS = 10  # CFS then gives an email process ~1/10 of a contended core's time


@dataclass(frozen=True)
class Kind:
    """Workers on one queue: RQ takes a job from a single queue by moving it into a list of
    its own (BLMOVE), from several by popping it (BLPOP), and a worker killed in between
    loses a popped job for good. So every worker of the pool has exactly one queue."""
    queue: str
    count: int
    niceness: int = 0


class AmphiPool(WorkerPool):
    """RQ's WorkerPool (it restarts a worker that dies, and stops them all on SIGTERM), with
    workers of several kinds: tickets, the sweeps, and emails at a lower CPU priority, so
    that during an on-sale the API and the tickets get the cores and the emails catch up
    when the rush eases."""

    def __init__(self, connection: Any, kinds: list[Kind]) -> None:
        super().__init__([kinds[0].queue], connection=connection,
                         num_workers=sum(k.count for k in kinds), worker_class=AmphiWorker)
        self.kinds = kinds
        self.kind_of: dict[str, Kind] = {}

    def get_worker_process(self, name: str, burst: bool, _sleep: float = 0,
                           logging_level: str = "INFO") -> BaseProcess:
        self.kind_of = {n: k for n, k in self.kind_of.items() if n in self.worker_dict}
        alive = Counter(self.kind_of.values())
        kind = next(k for k in self.kinds if alive[k] < k.count)
        self.kind_of[name] = kind
        return ForkProcess(
            target=_worker_of_kind,
            args=(kind, name, self._connection_class, self._pool_class, self._pool_kwargs),
            kwargs={"burst": burst, "logging_level": logging_level,
                    "worker_class": self.worker_class},
            name=f"{kind.queue} worker {name} (WorkerPool {self.name})")


def _worker_of_kind(kind: Kind, name: str, *connection: Any, **options: Any) -> None:
    if kind.niceness:
        os.nice(kind.niceness)
    rq_run_worker(name, [kind.queue], *connection, **options)


def default_processes() -> int:
    """One worker of each kind per core: a job is CPU work (tickets, QR codes) between short
    waits on Redis and PostgreSQL, and the email workers only take what CPU is left."""
    return max(1, os.cpu_count() or 1)


def run_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True,
               processes: int = 1, email_processes: int = 1) -> None:
    """`processes` ticket workers, one for the sweeps and `email_processes` email workers
    under one pool, and RQ's cron that enqueues the sweeps. `burst`: one worker takes every
    queue until all are empty (emails included), then exits."""
    _configure_logs(settings)
    connection = queue_client(settings.rq_url)
    level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    if burst:
        worker = AmphiWorker([Queue(n, connection=connection) for n in QUEUES],
                             connection=connection)
        worker.work(burst=True, logging_level=level)
        return
    cron = None
    if with_cron:
        cron = multiprocessing.get_context("spawn").Process(
            target=run_cron, args=(settings,), name="amphi-cron", daemon=True)
        cron.start()
    log.info("worker starting", extra={"ticket_processes": processes,
                                       "email_processes": email_processes})
    kinds = [Kind(DEFAULT, processes), Kind(MAINTENANCE, 1),
             Kind(EMAIL, email_processes, EMAIL_NICENESS)]
    try:
        AmphiPool(connection, kinds).start(logging_level=level)
    finally:
        if cron is not None:
            cron.terminate()
            cron.join(5)
