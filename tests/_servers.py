"""Servers the tests run as child processes (uvicorn, localstripe): start, wait until they
answer, stop, and show their log when they fail; and the addresses of the suites' own
storage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from amphi.settings import Settings
from runtime.devservices import redis_server_binary, stop_process

REPO = Path(__file__).resolve().parent.parent


def redis_db_url(redis_url: str, db: int) -> str:
    """The same Redis server, another database index."""
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def child_server(argv: list[str], *, env: dict[str, str], log_path: Path, name: str,
                 answers: Callable[[], bool], timeout: float = 20,
                 ) -> Iterator[subprocess.Popen[bytes]]:
    """Run `argv` until the block ends; `answers()` says when it is ready. Yields the
    process."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if answers():
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer in {timeout:g}s:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        stop_process(proc, name)


@contextmanager
def uvicorn_server(factory: str, *, env: dict[str, str], log_dir: Path,
                   timeout: float = 20) -> Iterator[str]:
    """uvicorn serving `factory` (module:function) on a free port as production serves it
    (`amphi serve --app`: runtime/serving.py's options, batched accepts); yields its base URL.
    A traceback in its log fails the test that used it."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    log_path = log_dir / "uvicorn.log"
    argv = [sys.executable, "-m", "runtime.cli", "serve", "--app", factory,
            "--host", "127.0.0.1", "--port", str(port)]
    with child_server(argv, env=env, log_path=log_path, name="uvicorn", timeout=timeout,
                      answers=lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200):
        yield url
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.ConnectionError:
        return False


@contextmanager
def private_redis(workdir: Path, *, port: int | None = None) -> Iterator[int]:
    """A redis-server of the caller's own (on `port`, or a free one; no persistence), for
    tests that stop, cut or FLUSHALL it: the machine's Redis is shared. Yields its port."""
    binary, _ = redis_server_binary()
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]
    with child_server(argv, env={}, log_path=workdir / "redis.log", name="redis-server",
                      answers=lambda: _redis_answers(port)):
        yield port


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables an amphi process (the API, a worker, the CLI) reads
    `settings` from."""
    return {
        "APP_ENV": settings.app_env,
        "REDIS_URL": settings.redis_url,
        "RQ_REDIS_URL": settings.rq_redis_url,
        "DATABASE_URL": settings.database_url,
        "JWT_SECRET": settings.jwt_secret,
        "HOLD_TTL_SECONDS": str(settings.hold_ttl_seconds),
        "STRIPE_SECRET_KEY": settings.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret,
        "STRIPE_API_BASE": settings.stripe_api_base,
        "SMTP_URL": settings.smtp_url,
        "OUTBOX_DIR": settings.outbox_dir,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        # the app and the workers sign QR payloads with the same key
        **({"TICKET_SIGNING_KEY": settings.ticket_signing_key}
           if getattr(settings, "ticket_signing_key", "") else {}),
        **({"TICKET_SIGNING_KEY_FILE": str(Path(settings.ticket_signing_key_file).resolve())}
           if getattr(settings, "ticket_signing_key_file", "") else {}),
    }


def amphi_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment, with `settings` and `extra` over it: for a child amphi
    process."""
    return {**os.environ, **settings_env(settings), **extra}
