"""Structured logs: one JSON object a line, carrying the request, hold and order ids bound
to the current context, so one order can be followed from hold to ticket to scan."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import orjson

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def bind(**fields: Any) -> None:
    """Add fields (request_id, hold_id, order_id, ...) to every log line of this context."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def context() -> dict[str, Any]:
    return dict(_context.get())


# What a request did, said on its one access line (a canonical log line) instead of a line
# of its own: a hold costs one log write, not two.
_event: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_event", default=None)


def conclude(event: str, **fields: Any) -> None:
    """Name this request's outcome ("hold created") and bind its facts for the access line."""
    _event.set(event)
    bind(**fields)


class request_scope:  # lowercase: used as a function, `with request_scope(...)`
    """A request's log context: `fields` on every line, and its `conclude`d event. A class,
    not a generator: it wraps every request, and costs a third as much."""

    __slots__ = ("_fields", "_tokens")

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._tokens = (_event.set(None), _context.set({**_context.get(), **self._fields}))

    def __exit__(self, *exc_info: object) -> None:
        event_token, context_token = self._tokens
        _context.reset(context_token)
        _event.reset(event_token)


def event() -> str | None:
    return _event.get()


def _as_text(value: Any) -> str:
    """What JSON cannot carry, as text; dates as orjson writes them (ISO 8601)."""
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


class JsonFormatter(logging.Formatter):
    """Every request writes at least one line (the access log), so this is on the hot
    path: one reused encoder, and the timestamp's seconds formatted once a second."""

    @staticmethod
    def _encode(entry: dict[str, Any]) -> str:
        try:
            return orjson.dumps(entry, default=_as_text).decode()
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, say
            return json.dumps(entry, default=_as_text)

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads see a consistent pair

    def _timestamp(self, created: float) -> str:
        second = int(created)
        micros = round((created - second) * 1_000_000)  # rounded as datetime rounds it
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached, prefix = self._second
        if second != cached:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, prefix)
        return f"{prefix}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(),
        }
        fields = record.__dict__
        for key in fields:
            if key not in _STANDARD:
                entry[key] = fields[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encode(entry)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {**_context.get(), **{k: v for k, v in vars(record).items() if k not in _STANDARD}}
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The JSON lines handler `configure` installs. Access lines (`info`) wait in a buffer,
    as with nginx's ``access_log ... buffer= flush=``: they are written when 64 KiB gather,
    when a new line finds the oldest waiting for `FLUSH_SECONDS`, before any other record
    (so lines stay in order), and on `flush`, which the API calls every `FLUSH_SECONDS`
    and logging at exit. One write for many lines instead of one each: a process killed
    outright loses at most its last `FLUSH_SECONDS` of access lines."""

    formatter: JsonFormatter
    BUFFER_CHARS = 65_536
    FLUSH_SECONDS = 0.1

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        # A deque: append and popleft are atomic, so `buffer` takes no lock (threads that
        # log, such as the API's finalisation threads, flush through `emit`).
        self._waiting: collections.deque[str] = collections.deque()
        self._waiting_chars = 0  # roughly: only decides when to write
        self._oldest = 0.0

    def buffer(self, line: str, now: float) -> None:
        if not self._waiting:
            self._oldest = now
        self._waiting.append(line)
        self._waiting_chars += len(line)
        if self._waiting_chars >= self.BUFFER_CHARS or now - self._oldest >= self.FLUSH_SECONDS:
            self._flush_or_report()

    def _flush_or_report(self) -> None:
        """As `emit` does: a log that cannot be written is reported, and fails nothing."""
        try:
            self.flush()
        except Exception:
            self.handleError(None)  # type: ignore[arg-type]

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._waiting:
                self._waiting_chars = 0
                lines = []
                while self._waiting:
                    lines.append(self._waiting.popleft())
                self.stream.write("".join(lines))
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        self.flush()
        super().emit(record)


class RepeatLimit(logging.Filter):
    """Lets one of a run of identical warnings or errors through per `window` seconds (the
    same logger, message and exception type); the next one that passes carries `repeated`,
    how many were held back. An error repeated by every request of an outage is then a
    few lines, not thousands. INFO and below always pass."""

    MAX_KEYS = 1024

    def __init__(self, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window, self.clock = window, clock
        self._seen: dict[tuple[str, object, str], list[float]] = {}  # key -> [since, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0] if record.exc_info else None
        key = (record.name, record.msg, exc_type.__name__ if exc_type else "")
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        if len(self._seen) >= self.MAX_KEYS:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def _reaches_only(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether `logger`'s INFO records go to `handler` alone, unfiltered (a RepeatLimit
    passes every INFO record)."""
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return False
        if node.parent is None:  # the root
            return node.handlers == [handler] and all(
                isinstance(f, RepeatLimit) for f in handler.filters)
        if node.handlers or not node.propagate:
            return False
        node = node.parent
    return False


def info(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """``logger.info(msg, extra=fields)``, written the same, at a fraction of the cost:
    every request writes an access line, and the logging module's record, dispatch,
    formatter and a write each took a sixth of a hold's time in the API. The line goes
    straight to the JSON handler's buffer when nothing else would see it (no other handler,
    no filter, as `configure` sets up); otherwise, as in tests that add a handler, through
    `logger.info`."""
    handler = next(iter(logging.getLogger().handlers), None)
    if (not isinstance(handler, JsonHandler) or not logger.isEnabledFor(logging.INFO)
            or not _reaches_only(logger, handler)):
        logger.info(msg, extra=fields)
        return
    now = time.time()
    entry = {"ts": handler.formatter._timestamp(now), "level": "info",
             "logger": logger.name, "msg": msg, **_context.get(), **fields}
    handler.buffer(handler.formatter._encode(entry) + handler.terminator, now)


async def flush_every(seconds: float = JsonHandler.FLUSH_SECONDS) -> None:
    """Write buffered access lines at least every `seconds` (the API runs this)."""
    while True:
        await asyncio.sleep(seconds)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, JsonHandler):
                handler._flush_or_report()


def configure(level: str = "INFO", fmt: str = "json") -> None:
    if fmt == "json":
        handler: logging.Handler = JsonHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
    handler.addFilter(RepeatLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The formatters use none of the caller's file/line, thread or process fields: skip
    # collecting them for every record (the logging HOWTO's "Optimization" section), which
    # is a fifth of an access log line's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Alembic announces every plugin it sets up at INFO; that is noise in an operator's log.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
