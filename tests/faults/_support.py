"""Helpers of the fault drills: servers of a test's own that it may stop and start
(PostgreSQL, the queue's Redis), a real `amphi worker` pool watched through psutil and RQ's
registries, a burst of paid orders and their signed webhooks, a finalisation held in the
middle of its transaction, the checks that every paid order completed exactly once, and the
`amphi reconcile` that ends every drill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from rq import Queue
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker
from sqlalchemy import Connection, Engine, text

from amphi.settings import Settings
from ledger.db import sync_engine
from ledger.migrate import upgrade
from runtime.devservices import redis_server_binary
from services import queueing
from tests._servers import amphi_env, free_port
from tests.api._support import data
from tests.ops._support import CLEAN, reconcile
from tests.payments._support import (
    REPO,
    SUCCEEDED,
    assert_block_matches_ledger,
    assert_no_failed_jobs,
    bearer,
    block_of,
    checkout,
    deliver,
    make_hold,
    one_set_of_tickets,
    order_row,
    rows,
    scalar,
    seat_indices,
    stripe_event,
    stripe_event_count,
)

PG_BIN = Path(os.environ.get("AMPHI_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
HANDLED = {"received": True, "handled": True}
BLOCKER_EVENT_TYPE = "drill.blocker"


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2, *,
             explain: Callable[[], str] | None = None) -> Any:
    """`check()`'s first truthy value, polled until `timeout` seconds have passed; then an
    AssertionError with `explain()`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}"
                                 + (f"\n{explain()}" if explain else ""))
        time.sleep(every)


# -- PostgreSQL of the test's own ---------------------------------------------------------------
def _as_postgres() -> list[str]:
    """initdb and the server refuse to run as root: run them as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cannot be run here, or None."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / name).exists():
            return f"{PG_BIN / name} not found (set AMPHI_TEST_PG_BIN)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser(1) to start PostgreSQL as postgres"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL"
    return None


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, on a free port of 127.0.0.1 (trust
    auth, fsync off): this test may stop it, unlike the machine's shared server."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data, self.log = root / "data", root / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                               *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {done.stdout}{done.stderr}\n"
                               f"{self.tail()}")

    def init(self) -> None:
        done = subprocess.run([*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(self.data),
                               "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> None:
        subprocess.run([*_as_postgres(), str(PG_BIN / "psql"), "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-qAt",
                        "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True,
                       timeout=60)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """An initialised, running PrivatePostgres; stopped and deleted afterwards. Its
    directory is under the system temp dir: pytest's tmp_path is private to root, and the
    server runs as `postgres`."""
    root = Path(tempfile.mkdtemp(prefix="amphi-drill-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            with contextlib.suppress(Exception):
                server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -- the queue's Redis, restartable -------------------------------------------------------------
@contextlib.contextmanager
def drill_ledger() -> Iterator[tuple[PrivatePostgres, str, Engine]]:
    """A private PostgreSQL with a migrated database: the server (to stop and start), the
    database's URL, and an engine on it."""
    with private_postgres() as pg:
        pg.create_database("amphi_drill")
        url = pg.url("amphi_drill")
        upgrade(url)
        engine = sync_engine(url)
        try:
            yield pg, url, engine
        finally:
            engine.dispose()


def redis_server_missing() -> str | None:
    try:
        redis_server_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


class RestartableRedis:
    """A redis-server of the test's own on a free port, every write fsynced to its
    append-only file, so that what it acknowledged survives a SHUTDOWN and a restart in
    the same directory; or (`persistent=False`) none, so that it restarts empty."""

    def __init__(self, workdir: Path, *, persistent: bool = True) -> None:
        self.workdir, self.port, self.persistent = workdir, free_port(), persistent
        self.binary, _ = redis_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--save", "", "--daemonize", "no",
                *(["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                  else ["--appendonly", "no"])]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for("the queue's redis-server to answer", self._answers, timeout=20, every=0.05)

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n"
                                 f"{(self.workdir / 'redis.log').read_text()}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:  # refused, or still loading its AOF
            return False

    def shutdown(self) -> None:
        """SHUTDOWN (the AOF is fsynced), and wait for the process to exit."""
        assert self.proc is not None
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            client.shutdown()
        self.proc.wait(20)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- a real `amphi worker` pool -----------------------------------------------------------------
@dataclass(frozen=True)
class PoolWorker:
    """A worker of the pool as RQ registered it, with the pid of its live process."""
    name: str
    pid: int
    state: str
    queues: tuple[str, ...]


@dataclass
class WorkerPool:
    """`amphi worker --processes N` (not burst) in a subprocess, logging to `log_path`.
    Remembers every process it has seen under it, so that `stop` can also end those that
    outlived their parent (RQ's scheduler process survives its worker's SIGKILL).

    How many workers the pool runs, and on which queues, is the application's business
    (workers/queues.py); a pool is ready when every worker process it forked has registered
    with RQ and together they work every queue of queueing.QUEUES."""

    settings: Settings
    log_path: Path
    processes: int = 2
    proc: subprocess.Popen[bytes] | None = None
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)

    def start(self) -> None:
        argv = [str(Path(sys.executable).with_name("amphi")), "worker",
                "--processes", str(self.processes)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO,
                                         env=amphi_env(self.settings),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    @property
    def main(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def descendants(self) -> list[psutil.Process]:
        found = self.main.children(recursive=True)
        for p in found:
            if p.pid not in self.seen:
                self.seen[p.pid] = p
                with contextlib.suppress(psutil.Error):
                    self.parents[p.pid] = p.ppid()
        return found

    def _children(self) -> dict[int, list[str]]:
        """The pool process's live children (workers, RQ's cron, multiprocessing's
        resource tracker) and their command lines."""
        self.descendants()
        found = {}
        for p in self.main.children():
            with contextlib.suppress(psutil.Error):
                if p.status() != psutil.STATUS_ZOMBIE:
                    found[p.pid] = p.cmdline()
        return found

    def forked(self) -> set[int]:
        """Pids of the worker processes: the children forked by RQ's WorkerPool (not the
        spawned cron, nor the resource tracker)."""
        return {pid for pid, argv in self._children().items()
                if not any("spawn_main" in a or "resource_tracker" in a for a in argv)}

    def cron_alive(self) -> bool:
        """Whether the pool's `amphi-cron` process (a spawned child: RQ's CronScheduler,
        which enqueues the sweeps) is running."""
        return any(any("spawn_main" in a for a in argv) for argv in self._children().values())

    def workers(self, connection: redis.Redis) -> list[PoolWorker]:
        """The workers registered in RQ whose process is a live child of the pool."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"amphi worker exited with {self.proc.returncode}:\n"
                                 f"{self.log()}")
        forked = self.forked()
        return [PoolWorker(w.name, w.pid, w.get_state(), tuple(w.queue_names()))
                for w in Worker.all(connection=connection) if w.pid in forked]

    def ready(self, connection: redis.Redis) -> list[PoolWorker] | None:
        workers = self.workers(connection)
        covered = {q for w in workers for q in w.queues}
        if (workers and {w.pid for w in workers} == self.forked()
                and covered >= set(queueing.QUEUES)):
            return workers
        return None

    def wait_ready(self, connection: redis.Redis, timeout: float = 60,
                   count: int | None = None) -> list[PoolWorker]:
        """The pool's workers once ready (and `count` of them, when given)."""
        def explain() -> str:
            registered = [(w.name, w.pid, w.queue_names())
                          for w in Worker.all(connection=connection)]
            return f"forked={sorted(self.forked())}\nregistered={registered}\n{self.log()}"

        return wait_for(
            "the pool's workers to register with RQ",
            lambda: (w if (w := self.ready(connection)) and count in (None, len(w)) else None),
            timeout, every=0.3, explain=explain)

    def log(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown), SIGKILL after 30 s; then, after 5 s of grace,
        SIGKILL one pid at a time every process seen under the pool that still runs (each
        checked to be the very process seen, not a reused pid), noted in `leftovers`."""
        if self.proc is None:
            return
        with contextlib.suppress(psutil.Error):
            self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.leftovers.append(f"amphi worker {self.proc.pid} ignored SIGTERM for 30 s")
                self.proc.kill()
                self.proc.wait()
        running = []
        for process in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    running.append(process)
        _, still = psutil.wait_procs(running, timeout=5)
        for process in still:
            with contextlib.suppress(psutil.Error):
                self.leftovers.append(
                    f"pid {process.pid} (child of {self.parents.get(process.pid)}) "
                    f"{' '.join(process.cmdline())[-60:]!r} outlived the pool")
                process.kill()
                process.wait(10)


# -- a finalisation held in the middle of its transaction ---------------------------------------
@contextlib.contextmanager
def stripe_event_blocker(engine: Engine, event_id: str) -> Iterator[Connection]:
    """An open transaction that has inserted (uncommitted) the stripe_events row of
    `event_id`, without an order (so the order's row is not locked). The batch that
    carries this event then waits at its last statement (recording the Stripe events):
    after its Redis sale replay and its tickets' INSERTs, before its COMMIT. Rolled back
    at the end of the block, which lets that statement go on."""
    conn = engine.connect()
    transaction = conn.begin()
    try:
        conn.execute(text("INSERT INTO stripe_events (id, event_type) VALUES (:id, :type)"),
                     {"id": event_id, "type": BLOCKER_EVENT_TYPE})
        yield conn
    finally:
        transaction.rollback()
        conn.close()


def blocked_finalisations(engine: Engine) -> list[dict[str, Any]]:
    """Backends of the ledger's database that wait for a lock in the Stripe events INSERT."""
    return rows(engine, """
        SELECT pid, wait_event_type, state, xact_start FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND query ILIKE 'INSERT INTO stripe_events%'""")


@dataclass(frozen=True)
class HeldJob:
    job_id: str
    worker: PoolWorker
    orders: int  # payments in the job's batch


def find_held_job(pool: WorkerPool, queue: Queue, engine: Engine, order_id: str) -> HeldJob | None:
    """The started finalisation job whose batch has `order_id`, when it is waiting in the
    ledger (blocked_finalisations) and its worker is a live, busy child of the pool."""
    if not blocked_finalisations(engine):
        return None
    registry = StartedJobRegistry(queue=queue)
    for job_id in registry.get_job_ids(cleanup=False):  # the test must not clean up for RQ
        job = Job.fetch(job_id, connection=queue.connection)
        if not any(payment[0] == order_id for payment in job.args[0]):
            continue
        for worker in pool.workers(queue.connection):
            if worker.name == job.worker_name and worker.state == "busy":
                return HeldJob(job_id, worker, len(job.args[0]))
    return None


# -- a burst of paid orders ---------------------------------------------------------------------
@dataclass(frozen=True)
class Purchase:
    """A fan's paid order: the seats they held (none in general admission) and the
    `payment_intent.succeeded` event Stripe sends for it."""
    fan: str
    section: str
    quantity: int
    hold_id: str
    order_id: str
    seats: tuple[int, ...]
    event: dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.event["id"]


def _held_seats(client: redis.Redis, section: str, hold_id: str) -> tuple[int, ...]:
    raw = client.hget(block_of(section).records, hold_id)
    assert raw is not None, hold_id
    return tuple(sorted(json.loads(raw)["seats"]))


def succeeded_event(engine: Engine, order_id: str, hold_id: str) -> dict[str, Any]:
    """The signed-to-be `payment_intent.succeeded` event of an order's intent."""
    row = order_row(engine, order_id)
    return stripe_event({"id": row["payment_intent_id"], "object": "payment_intent",
                         "amount": row["total_cents"], "currency": "usd",
                         "status": "succeeded",
                         "metadata": {"amphitheater": "true", "order_id": order_id,
                                      "hold_id": hold_id}}, SUCCEEDED)


@dataclass(frozen=True)
class HeldFan:
    """A fan holding seats (none named in general admission)."""
    fan: str
    headers: dict[str, str]
    section: str
    quantity: int
    hold_id: str
    seats: tuple[int, ...]


async def hold_many(api: httpx.AsyncClient, settings: Settings, hold_redis: redis.Redis,
                    sections: dict[str, str], count: int, *, reserved: Sequence[str],
                    general: Sequence[str] = (), concurrency: int = 24) -> list[HeldFan]:
    """`count` signed-in fans, each holding 1-4 seats, in turn in each section named."""
    names = [*reserved, *general]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> HeldFan:
        fan, section, quantity = f"drill-fan-{i}", names[i % len(names)], 1 + i % 4
        headers = bearer(settings, fan)
        async with gate:
            hold = await make_hold(api, sections[section], quantity, headers=headers)
        seats = () if section in general else _held_seats(hold_redis, section, hold["hold_id"])
        assert section in general or len(seats) == quantity, (section, seats)
        return HeldFan(fan, headers, section, quantity, hold["hold_id"], seats)

    return list(await asyncio.gather(*[one(i) for i in range(count)]))


async def buy_many(api: httpx.AsyncClient, settings: Settings, engine: Engine,
                   hold_redis: redis.Redis, sections: dict[str, str], count: int, *,
                   reserved: Sequence[str], general: Sequence[str] = (),
                   concurrency: int = 24) -> list[Purchase]:
    """`count` fans holding seats (hold_many) and checking out; returns their purchases with
    the events Stripe will send once they have paid."""
    fans = await hold_many(api, settings, hold_redis, sections, count, reserved=reserved,
                           general=general, concurrency=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(f: HeldFan) -> Purchase:
        async with gate:
            order = await checkout(api, f.hold_id, headers=f.headers)
        return Purchase(f.fan, f.section, f.quantity, f.hold_id, order["order_id"], f.seats,
                        await asyncio.to_thread(succeeded_event, engine, order["order_id"],
                                                f.hold_id))

    return list(await asyncio.gather(*[one(f) for f in fans]))


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: its event, the status it got, how long it took, and when it
    was answered (time.monotonic)."""
    event_id: str
    status: int
    seconds: float
    answered: float
    body: str


async def deliver_timed(api: httpx.AsyncClient, event: dict[str, Any]) -> Delivery:
    started = time.monotonic()
    response = await deliver(api, event)
    answered = time.monotonic()
    if response.status_code == 200:
        assert data(response) == HANDLED, response.text
    return Delivery(event["id"], response.status_code, answered - started, answered,
                    response.text)


async def redeliver_until_accepted(api: httpx.AsyncClient, events: Sequence[dict[str, Any]],
                                   *, rounds: int = 20, pause: float = 1.0) -> list[Delivery]:
    """What Stripe does with a webhook that did not get a 2xx: deliver it again (here a
    second apart, not over hours) until it does. Returns every attempt."""
    attempts: list[Delivery] = []
    pending = list(events)
    for _ in range(rounds):
        if not pending:
            return attempts
        answers = await asyncio.gather(*[deliver_timed(api, e) for e in pending])
        attempts.extend(answers)
        pending = [e for e, a in zip(pending, answers, strict=True) if a.status != 200]
        if pending:
            await asyncio.sleep(pause)
    raise AssertionError(f"{len(pending)} webhooks still refused after {rounds} rounds: "
                         f"{[a.body for a in attempts[-3:]]}")


# -- afterwards ---------------------------------------------------------------------------------
def completed_count(engine: Engine, purchases: Sequence[Purchase]) -> int:
    return scalar(engine, "SELECT count(*) FROM orders WHERE id = ANY(CAST(:ids AS uuid[])) "
                          "AND status = 'completed'",
                  ids=[p.order_id for p in purchases])


def unemailed(engine: Engine, purchases: Sequence[Purchase]) -> list[dict[str, Any]]:
    return rows(engine, "SELECT order_number, status, completed_at FROM orders "
                        "WHERE id = ANY(CAST(:ids AS uuid[])) AND email_sent_at IS NULL "
                        "ORDER BY order_number", ids=[p.order_id for p in purchases])


def assert_every_confirmation_sent(engine: Engine, purchases: Sequence[Purchase],
                                   timeout: float = 30) -> None:
    """Every completed order's confirmation email is sent (workers/email.py marks
    email_sent_at), within `timeout` seconds."""
    wait_for("every confirmation email", lambda: not unemailed(engine, purchases), timeout,
             every=0.5, explain=lambda: "completed orders that never got their email: "
             + ", ".join(f"{r['order_number']} (completed {r['completed_at']:%H:%M:%S.%f})"
                         for r in unemailed(engine, purchases)))


def live_workers(connection: redis.Redis) -> set[str]:
    """Names of the registered workers whose process is alive (a SIGKILLed worker stays
    registered until its key expires)."""
    return {w.name for w in Worker.all(connection=connection) if psutil.pid_exists(w.pid)}


def abandoned_jobs(connection: redis.Redis) -> list[str]:
    """Finalisation and email jobs still `started` by a worker that no longer exists: RQ
    retries them when a worker's registry cleanup finds their heartbeat lapsed."""
    live = live_workers(connection)
    found = []
    for name in (queueing.DEFAULT, queueing.EMAIL):
        for job_id in StartedJobRegistry(name, connection=connection).get_job_ids(
                cleanup=False):
            job = Job.fetch(job_id, connection=connection)
            if job.worker_name not in live:
                found.append(job_id)
    return found


def queues_idle(connection: redis.Redis) -> bool:
    """Finalisation and email have nothing queued, waiting for a retry or running in a live
    worker (a job abandoned by a dead worker is not waited for: see abandoned_jobs)."""
    abandoned = set(abandoned_jobs(connection))
    for name in (queueing.DEFAULT, queueing.EMAIL):
        queue = Queue(name, connection=connection)
        started = set(StartedJobRegistry(queue=queue).get_job_ids(cleanup=False))
        if (queue.count or started - abandoned
                or ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False)):
            return False
    return True


def describe_queues(connection: redis.Redis) -> str:
    """RQ's state, for a drill that timed out: each queue's jobs and registries, the
    workers, and the scheduler and maintenance locks with their TTLs."""
    lines = []
    for name in queueing.QUEUES:
        queue = Queue(name, connection=connection)
        started = StartedJobRegistry(queue=queue)
        lines.append(f"{name}: queued={queue.count} "
                     f"scheduled={ScheduledJobRegistry(queue=queue).get_job_ids(cleanup=False)} "
                     f"failed={FailedJobRegistry(queue=queue).get_job_ids(cleanup=False)}")
        live = live_workers(connection)
        for entry, expires in connection.zrange(started.key, 0, -1, withscores=True):
            job = Job.fetch(entry.decode().split(":")[0], connection=connection)
            lines.append(
                f"  started job {job.id}: status={job.get_status()} worker={job.worker_name} "
                f"({'alive' if job.worker_name in live else 'gone'}) "
                f"retries_left={job.retries_left}, heartbeat lapsed "
                f"{time.time() - expires:.0f}s ago")
    for worker in Worker.all(connection=connection):
        lines.append(f"worker {worker.name} pid={worker.pid} state={worker.get_state()}")
    for key in sorted(connection.scan_iter("rq:*lock*")) + sorted(
            connection.scan_iter("rq:clean_registries:*")):
        lines.append(f"{key.decode()} = {connection.get(key)!r} ttl={connection.ttl(key)}")
    lines.append(f"now={time.time():.0f}")
    return "\n".join(lines)


def wait_until_settled(engine: Engine, rq: redis.Redis, purchases: Sequence[Purchase],
                       timeout: float) -> float:
    """Poll until every order is completed and the purchase queues are idle; returns the
    seconds it took."""
    started = time.monotonic()
    wait_for("every paid order completed",
             lambda: completed_count(engine, purchases) == len(purchases), timeout, every=0.5,
             explain=lambda: describe_queues(rq))
    wait_for("the finalisation and email queues to drain", lambda: queues_idle(rq),
             max(5.0, timeout - (time.monotonic() - started)), every=0.5,
             explain=lambda: describe_queues(rq))
    return time.monotonic() - started


def retried_jobs(connection: redis.Redis) -> dict[str, int]:
    """Finished finalisation and email jobs that needed a retry: job id -> retries used."""
    found = {}
    for name in (queueing.DEFAULT, queueing.EMAIL):
        queue = Queue(name, connection=connection)
        for job_id in FinishedJobRegistry(queue=queue).get_job_ids(cleanup=False):
            job = Job.fetch(job_id, connection=connection)
            used = (queueing.RETRY.max - job.retries_left) if job.retries_left is not None else 0
            if used:
                found[job_id] = used
    return found


def assert_each_paid_order_completed_once(engine: Engine, hold_redis: redis.Redis,
                                          rq: redis.Redis,
                                          purchases: Sequence[Purchase]) -> None:
    """Every order completed, with one set of tickets on exactly the seats its fan held (or
    its quantity in general admission); every Stripe event recorded once and nothing else
    recorded; each block's sold seats exactly the ledger's tickets, none held; no
    finalisation or email job failed or left waiting."""
    for p in purchases:
        assert order_row(engine, p.order_id)["status"] == "completed", p
        tickets = one_set_of_tickets(engine, p.order_id, p.quantity)
        if p.seats:
            assert tuple(seat_indices(tickets)) == p.seats, (p, tickets)
        else:
            assert {t["seat_index"] for t in tickets} == {None}, tickets
        assert stripe_event_count(engine, p.event_id) == 1, p
    assert scalar(engine, "SELECT count(*) FROM stripe_events") == len(purchases)
    assert scalar(engine, "SELECT count(*) FROM stripe_events WHERE event_type = :t",
                  t=BLOCKER_EVENT_TYPE) == 0
    for section in sorted({p.section for p in purchases}):
        state = assert_block_matches_ledger(hold_redis, engine, section)
        bought = sum(p.quantity for p in purchases if p.section == section)
        assert (state.held, state.sold) == (0, bought), (section, state, bought)
    for name in (queueing.DEFAULT, queueing.EMAIL):
        assert_no_failed_jobs(Queue(name, connection=rq))


def assert_reconcile_clean(settings: Settings) -> None:
    """What an operator runs after an incident: `amphi reconcile` finds Redis, the ledger
    and the payments in agreement, no seat oversold."""
    run = reconcile(settings)
    assert run.code == 0 and run.verdict == CLEAN, run.out
