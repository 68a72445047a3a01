"""Prometheus metrics. Events counted where they happen (holds, Redis errors) are counters of
the process; the totals that have a single source of truth (orders by status, tickets,
scans, queue depth, holds expired inside Lua) are read from it when Prometheus scrapes, so
they agree across API processes, workers and restarts. The finalisation latency histogram
is observed by the workers, wherever they run, and kept in RQ's Redis for the same reason
(`record_finalize_latency`, `read_finalize_latency`).

With several API processes (`amphi serve --workers N`) the process counters are shared
through prometheus_client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` is set by
`amphi serve` before the processes start. Each value there checks on every update that its
process has not forked, by asking for the process id: a system call per update, three a
hold. We hand it the id kept by the process itself (refreshed in a forked child) instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


def current_pid() -> int:
    """os.getpid() without the system call: the id of this process, refreshed after fork."""
    return _pid


os.register_at_fork(after_in_child=_refresh_pid)
if values.ValueClass is not values.MutexValue:  # multiprocess mode: set before any metric
    # prometheus_client leaves MultiProcessValue unannotated
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=current_pid)

HOLDS_CREATED = Counter("amphi_holds_created_total", "Holds made", ["kind"])
HOLDS_REFUSED = Counter("amphi_holds_refused_total", "Hold requests refused, by reason",
                        ["reason"])
HOLDS_RELEASED = Counter("amphi_holds_released_total", "Holds released by their fan")
HOLD_SECONDS = Histogram(
    "amphi_hold_seconds", "Time to make a hold (the engine call, one Redis round trip)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REDIS_BATCH = Histogram(
    "amphi_redis_batch_commands", "Commands in each auto-pipelined Redis round trip",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
REDIS_ERRORS = Counter("amphi_redis_errors_total", "Requests failed by a Redis error", ["kind"])
DATABASE_ERRORS = Counter("amphi_database_errors_total",
                          "Requests failed because the database was unreachable")

QUEUE_JOINS = Counter("amphi_queue_joins_total", "Fans who joined a waiting room (first time)")
QUEUE_WAIT_SECONDS = Histogram(
    "amphi_queue_wait_seconds", "From joining a waiting room to the admission token",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@functools.lru_cache(maxsize=1024)
def labelled(metric: MetricWrapperBase, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: labels() validates and locks every time,
    and the hot path counts every hold."""
    return metric.labels(*values)


@dataclass(frozen=True, slots=True)
class Totals:
    """What the scrape reads from the single sources of truth."""

    orders_by_status: dict[str, int]
    tickets_by_kind: dict[str, int]
    scans_by_result: dict[str, int]
    queue_depth: dict[str, int]
    queue_failed: dict[str, int]
    holds_expired: int
    inventory: list[tuple[str, str, int, int, int]]  # date, section, available, held, sold
    finalize_latency: FinalizeLatency | None = None
    inventory_restores: tuple[int, int] = (0, 0)  # restores, blocks restored
    rooms: list[RoomTotals] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RoomTotals:
    """One waiting room, as Redis has it at the scrape."""
    event_date: str
    state: str
    waiting: int  # joined, not yet admitted
    admitted: int  # ever
    active: int  # admitted, turn not ended
    turns_expired: int  # admitted, turn ran out without an order: abandoned


class TotalsCollector(Collector):
    """Turns one `Totals` reading (taken just before the scrape) into metrics."""

    def __init__(self, totals: Totals) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        t = self.totals
        yield _gauge("amphi_orders", "Orders by status", "status", t.orders_by_status)
        tickets = CounterMetricFamily("amphi_tickets_issued", "Tickets issued (live or not)",
                                      labels=["kind"])
        for kind, n in sorted(t.tickets_by_kind.items()):
            tickets.add_metric([kind], n)
        yield tickets
        scans = CounterMetricFamily("amphi_scans", "Gate scans by result", labels=["result"])
        for result, n in sorted(t.scans_by_result.items()):
            scans.add_metric([result], n)
        yield scans
        yield _gauge("amphi_queue_depth", "Jobs waiting in each RQ queue", "queue",
                     t.queue_depth)
        yield _gauge("amphi_queue_failed", "Jobs that failed for good (retries spent)",
                     "queue", t.queue_failed)
        yield CounterMetricFamily("amphi_holds_expired", "Holds that expired unpaid (Redis)",
                                  value=t.holds_expired)
        seats = GaugeMetricFamily("amphi_seats", "Seats of each block by state",
                                  labels=["date", "section", "state"])
        for day, section, available, held, sold in t.inventory:
            for state, n in (("available", available), ("held", held), ("sold", sold)):
                seats.add_metric([day, section, state], n)
        yield seats
        if t.finalize_latency is not None:
            yield t.finalize_latency.family()
        yield CounterMetricFamily(
            "amphi_inventory_restores", "Times the worker found seat blocks missing in Redis "
            "and rebuilt them from the ledger", value=t.inventory_restores[0])
        yield CounterMetricFamily(
            "amphi_inventory_blocks_restored", "Seat blocks rebuilt from the ledger after "
            "Redis lost them", value=t.inventory_restores[1])
        rooms = [("amphi_queue_waiting", "Fans in a waiting room, not yet admitted", "waiting"),
                 ("amphi_queue_active", "Admitted fans whose turn goes on", "active")]
        for name, doc, attr in rooms:
            family = GaugeMetricFamily(name, doc, labels=["date"])
            for room in t.rooms:
                family.add_metric([room.event_date], getattr(room, attr))
            yield family
        admitted = CounterMetricFamily("amphi_queue_admitted", "Fans admitted from a waiting "
                                       "room (rate(): admitted per minute)", labels=["date"])
        expired = CounterMetricFamily("amphi_queue_turns_expired", "Turns that ran out without "
                                      "an order (over admitted: the abandon rate)",
                                      labels=["date"])
        for room in t.rooms:
            admitted.add_metric([room.event_date], room.admitted)
            expired.add_metric([room.event_date], room.turns_expired)
        yield admitted
        yield expired


FINALIZE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
FINALIZE_KEY = "amphi:metrics:finalize_seconds"


@dataclass(frozen=True, slots=True)
class FinalizeLatency:
    """Payment accepted (webhook, confirm) to tickets committed, over every worker."""

    counts: dict[str, int]  # bucket upper bound ("+Inf" too) -> observations in it
    total_seconds: float

    def family(self) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for le in [*map(str, FINALIZE_BUCKETS), "+Inf"]:
            cumulative += self.counts.get(le, 0)
            buckets.append((le, cumulative))
        return HistogramMetricFamily(
            "amphi_finalize_seconds", "Seconds from payment accepted to tickets committed",
            buckets=buckets, sum_value=self.total_seconds)


def _bucket(seconds: float) -> str:
    return next((str(b) for b in FINALIZE_BUCKETS if seconds <= b), "+Inf")


def record_finalize_latency(client: Any, seconds: list[float]) -> None:
    """Add observations to the shared histogram: one pipelined round trip."""
    if not seconds:
        return
    counts: dict[str, int] = {}
    for s in seconds:
        counts[_bucket(s)] = counts.get(_bucket(s), 0) + 1
    pipe = client.pipeline(transaction=False)
    for le, n in counts.items():
        pipe.hincrby(FINALIZE_KEY, le, n)
    pipe.hincrbyfloat(FINALIZE_KEY, "sum", sum(seconds))
    pipe.execute()


def read_finalize_latency(client: Any) -> FinalizeLatency:
    raw = {k.decode() if isinstance(k, bytes) else k: v
           for k, v in client.hgetall(FINALIZE_KEY).items()}
    total = float(raw.pop("sum", 0) or 0)
    return FinalizeLatency({le: int(n) for le, n in raw.items()}, total)


def _gauge(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family


def render(totals: Totals) -> bytes:
    """The exposition text: the counters of this process (of every API process in
    multiprocess mode), then `totals`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        # prometheus_client leaves MultiProcessCollector's __init__ unannotated
        multiprocess.MultiProcessCollector(counters)  # type: ignore[no-untyped-call]
    else:
        counters = REGISTRY
    read_now = CollectorRegistry()
    read_now.register(TotalsCollector(totals))
    return generate_latest(counters) + generate_latest(read_now)


INVENTORY_KEY = "amphi:metrics:inventory"


def record_inventory_restore(client: Any, blocks: int) -> None:
    """The worker restored `blocks` seat blocks from the ledger (kept beside the queues, as
    the finalisation histogram is, so that every API process's scrape reads it)."""
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(INVENTORY_KEY, "restores", 1)
    pipe.hincrby(INVENTORY_KEY, "blocks", blocks)
    pipe.execute()


def read_inventory_restores(client: Any) -> tuple[int, int]:
    """(restores, blocks restored) so far."""
    raw = {k.decode() if isinstance(k, bytes) else k: int(v)
           for k, v in client.hgetall(INVENTORY_KEY).items()}
    return raw.get("restores", 0), raw.get("blocks", 0)
