"""Queue names and the worker loop that `amphi worker` runs."""

from __future__ import annotations

import logging
import multiprocessing

from rq import Queue, Worker
from rq.cron import CronScheduler

from amphi import logs
from amphi.settings import Settings
from engine.connection import queue_client
from workers.jobs import DEFAULT, MAINTENANCE
from workers.sweep import expire_abandoned_orders, sweep_expired_holds

log = logging.getLogger(__name__)


def run_cron(settings: Settings) -> None:
    """RQ's own scheduler: enqueues the sweep every SWEEP_INTERVAL_SECONDS."""
    _configure_logs(settings)
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
    cron.register(expire_abandoned_orders, queue_name=MAINTENANCE, interval=60, ttl=120,
                  result_ttl=60, failure_ttl=3600)
    cron.start()


def _configure_logs(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    if settings.log_level != "DEBUG":
        # RQ logs three INFO lines for every sweep, every few seconds; our jobs log their own.
        for name in ("rq.worker", "rq.cron", "rq.scheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True) -> None:
    _configure_logs(settings)
    connection = queue_client(settings.rq_url)
    cron = None
    if with_cron and not burst:
        cron = multiprocessing.get_context("spawn").Process(
            target=run_cron, args=(settings,), name="amphi-cron", daemon=True
        )
        cron.start()
    try:
        queues = [Queue(name, connection=connection) for name in (DEFAULT, MAINTENANCE)]
        worker = Worker(queues, connection=connection)
        log.info("worker starting", extra={"queues": [q.name for q in queues]})
        worker.work(burst=burst, with_scheduler=not burst)
    finally:
        if cron is not None:
            cron.terminate()
            cron.join(5)
