"""Outages as operators should read them: per process, one warning when a dependency stops
answering and one when it answers again (with how long it was down and how many requests
it failed meanwhile), never a traceback per failed request. The requests themselves are
counted by the caller's metric.

The way back is found by a probe (a PING, a SELECT 1) every `every` seconds while the
dependency is down, so the "back" line comes when it is back, not at the next request
that happens to use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("amphi.outages")

Probe = Callable[[], Awaitable[object]]


class Outage:
    def __init__(self, dependency: str, probe: Probe, *, every: float = 1.0) -> None:
        self.dependency = dependency
        self.probe = probe
        self.every = every
        self.down_since: float | None = None
        self.failures = 0
        self._watch: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A request failed because the dependency did not answer."""
        self.failures += 1
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        log.warning(f"{self.dependency} unreachable", extra={
            "dependency": self.dependency, "error": f"{type(exc).__name__}: {exc}"[:300]})
        with contextlib.suppress(RuntimeError):  # no running loop: no probe, no "back" line
            # a context of its own: the "back" line is not the failed request's
            self._watch = asyncio.get_running_loop().create_task(
                self._until_back(), context=contextvars.Context())

    async def _until_back(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.probe()
            except Exception:  # still down: the next probe will tell
                continue
            self._back()
            return

    def _back(self) -> None:
        assert self.down_since is not None
        log.warning(f"{self.dependency} reachable again", extra={
            "dependency": self.dependency,
            "down_seconds": round(time.monotonic() - self.down_since, 1),
            "failed_requests": self.failures})
        self.down_since, self.failures, self._watch = None, 0, None

    async def aclose(self) -> None:
        if self._watch:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
