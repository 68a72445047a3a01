"""Serving an ASGI app factory under uvicorn: in one process, or in N processes that each
listen on a socket of their own (SO_REUSEPORT).

uvicorn's own ``--workers`` shares one listening socket among its processes, and whichever
process wakes first accepts a burst of new connections. With 100 connections opened at
once, one of two API processes often took most of them, and once all of them: measured
with wrk, 4.2 s of CPU in one process against none in the other over 5 s, and 8,500 holds/s
instead of 12,000. With a socket per process the kernel spreads new connections across the
processes evenly by their address hash, as gunicorn's ``--reuse-port`` and nginx's
``reuseport`` do. A load balancer keeps its connections open for long, so an uneven split
would last.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("runtime.serving")

# The API's uvicorn options; the benchmark's ceilings are served with the same.
UVICORN_OPTIONS: dict[str, Any] = {
    "factory": True,
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,  # the API reads X-Forwarded-For itself (api/forwarded.py)
    "loop": "runtime.accept:BatchAcceptLoop",  # uvloop, accepting in batches (runtime/accept.py)
    "http": "httptools",
    # uvicorn closes an idle keep-alive connection after 5 s by default. A client that
    # reuses it at that moment (a pooled connection, idle 5 s) gets no answer: the spike
    # lost ~5 % of its requests that way (RemoteDisconnected, resets). Longer than any
    # client's or load balancer's idle timeout (nginx and AWS ALB: 60 s), so that the
    # client always closes first.
    "timeout_keep_alive": 75,
}
STOP_SECONDS = 15  # a worker's graceful shutdown, before it is killed


def serve(app: str, *, host: str, port: int, workers: int) -> None:
    """Serve the factory `app` ("module:function", importable from the working directory,
    as with uvicorn's command line) until SIGINT or SIGTERM."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # spawned processes inherit it
    try:  # without SO_REUSEPORT: fails if anything listens on the port already
        sock = _listen(host, port, reuse_port=False)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if workers == 1:
        _run(app, host, port, sock)
        return
    sock.close()  # each process listens on a socket of its own
    _supervise(app, host, port, workers)


def _listen(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _run(app: str, host: str, port: int, sock: socket.socket) -> None:
    """Serve `app` on `sock` in this process; a failed startup exits with STARTUP_FAILURE."""
    config = uvicorn.Config(app, host=host, port=port, **UVICORN_OPTIONS)
    # Ctrl-C reaches the whole process group; uvicorn has already stopped cleanly by then
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def _worker(app: str, host: str, port: int) -> None:
    _run(app, host, port, _listen(host, port))


def _supervise(app: str, host: str, port: int, workers: int) -> None:
    """Start `workers` processes, restart any that dies, stop them all on SIGINT/SIGTERM."""
    context = multiprocessing.get_context("spawn")

    def start() -> Any:
        process = context.Process(target=_worker, args=(app, host, port), daemon=False)
        process.start()
        return process

    stopping, failed = False, False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    log.info("serving", extra={"workers": workers, "host": host, "port": port})
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                    log.error("an API process failed to start; stopping",
                              extra={"pid": process.pid})
                    stopping = failed = True
                    break
                log.warning("an API process exited; starting another",
                            extra={"pid": process.pid, "exitcode": process.exitcode})
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes its requests, then exits
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise SystemExit(STARTUP_FAILURE)
