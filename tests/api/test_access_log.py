"""The JSON log lines every request writes: the fast formatter keeps the same shape."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from amphi import logs


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "api.access", "levelno": logging.INFO,
                                    "levelname": "INFO", "msg": "request %s", "args": ("x",),
                                    **extra})
    record.created = created
    return record


def test_a_line_carries_time_context_and_fields() -> None:
    formatter = logs.JsonFormatter()
    with logs.bound(request_id="r-1", hold_id="h-1"):
        line = formatter.format(_record(1_700_000_000.25, status=201, path="/p", ms=1.5))
    entry = json.loads(line)
    assert entry == {"ts": "2023-11-14T22:13:20.250+00:00", "level": "info",
                     "logger": "api.access", "msg": "request x", "request_id": "r-1",
                     "hold_id": "h-1", "status": 201, "path": "/p", "ms": 1.5}
    assert list(entry)[:4] == ["ts", "level", "logger", "msg"]


def test_timestamps_match_isoformat_across_seconds() -> None:
    formatter = logs.JsonFormatter()
    for created in (1_700_000_000.0, 1_700_000_000.9996, 1_700_000_001.001, 1_699_999_999.5,
                    1_700_000_001.999):
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(_record(created)))["ts"] == expected


def test_values_json_cannot_encode_become_text() -> None:
    line = logs.JsonFormatter().format(_record(1.0, when=datetime(2027, 6, 19),
                                               amount=Decimal("12.50"), big=2**70))
    entry = json.loads(line)
    assert entry["when"] == "2027-06-19T00:00:00"  # ISO 8601, as orjson writes datetimes
    assert entry["amount"] == "12.50"
    assert entry["big"] == 2**70  # beyond orjson's 64 bits: the stdlib writes the line


@contextmanager
def json_logging() -> Iterator[io.StringIO]:
    """The root logger as `configure` sets it up (its JSON handler alone), writing to a
    buffer; restored after. Inside the test: pytest adds its own capturing handlers to the
    root for the test's run, which would send `logs.info` the slow way."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("INFO", "json")
    out = io.StringIO()
    root.handlers[0].stream = out  # type: ignore[attr-defined]
    try:
        yield out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_the_direct_access_line_is_the_logging_modules_line() -> None:
    log = logging.getLogger("api.access")
    fields = {"method": "POST", "path": "/p", "status": 201, "ms": 0.5,
              "when": datetime(2027, 6, 19)}
    with json_logging() as out, logs.request_scope(request_id="r-1"):
        logs.conclude("hold created", hold_id="h-1", seats=[3, 4])
        logs.info(log, "hold created", fields)
        assert out.getvalue() == ""  # buffered
        log.info("hold created", extra=fields)  # writes the buffered line first
    direct, through_logging = (json.loads(line) for line in out.getvalue().splitlines())
    assert direct.pop("ts")[:19] == through_logging.pop("ts")[:19]
    assert direct == through_logging
    assert list(direct) == list(through_logging)  # the same key order too


def test_the_access_line_goes_through_logging_when_another_handler_listens() -> None:
    seen: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = seen.append  # type: ignore[method-assign]
    with json_logging() as out:
        logging.getLogger("api").addHandler(collector)
        try:
            logs.info(logging.getLogger("api.access"), "request", {"status": 200})
        finally:
            logging.getLogger("api").removeHandler(collector)
    assert [(r.getMessage(), r.status) for r in seen] == [("request", 200)]  # type: ignore[attr-defined]
    assert json.loads(out.getvalue())["status"] == 200  # and the JSON line, at once


def test_no_access_line_below_its_level() -> None:
    with json_logging() as out:
        logging.getLogger().setLevel(logging.WARNING)
        logs.info(logging.getLogger("api.access"), "request", {"status": 200})
        logging.getLogger().handlers[0].flush()
    assert out.getvalue() == ""


def _statuses(out: io.StringIO) -> list[int]:
    return [json.loads(line)["status"] for line in out.getvalue().splitlines()]


def test_access_lines_wait_for_a_flush_and_keep_their_order() -> None:
    access, other = logging.getLogger("api.access"), logging.getLogger("api.errors")
    with json_logging() as out:
        for status in (200, 201):
            logs.info(access, "request", {"status": status})
        assert out.getvalue() == ""  # buffered
        other.info("refused", extra={"status": 409})  # any other record writes them first
        assert _statuses(out) == [200, 201, 409]
        logs.info(access, "request", {"status": 202})
        logging.getLogger().handlers[0].flush()
        assert _statuses(out) == [200, 201, 409, 202]


def test_buffered_lines_go_out_when_old_or_many(monkeypatch: pytest.MonkeyPatch) -> None:
    with json_logging() as out:
        _old_or_many(out, monkeypatch)


def _old_or_many(json_root: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    access, handler = logging.getLogger("api.access"), logging.getLogger().handlers[0]
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "time", lambda: clock[0])
    logs.info(access, "request", {"status": 200})
    clock[0] += logs.JsonHandler.FLUSH_SECONDS / 2
    logs.info(access, "request", {"status": 201})
    assert json_root.getvalue() == ""
    clock[0] += logs.JsonHandler.FLUSH_SECONDS
    logs.info(access, "request", {"status": 202})  # the oldest has waited long enough
    assert _statuses(json_root) == [200, 201, 202]
    size = len(json_root.getvalue()) // 3
    for _ in range(logs.JsonHandler.BUFFER_CHARS // size + 1):  # same clock: only size
        logs.info(access, "request", {"status": 203})
    assert len(_statuses(json_root)) > 3
    handler.flush()
    assert _statuses(json_root)[3:] == [203] * (logs.JsonHandler.BUFFER_CHARS // size + 1)


async def test_the_api_flushes_waiting_lines_by_itself() -> None:
    with json_logging() as out:
        flusher = asyncio.create_task(logs.flush_every(0.01))
        try:
            logs.info(logging.getLogger("api.access"), "request", {"status": 200})
            assert out.getvalue() == ""
            for _ in range(100):
                if out.getvalue():
                    break
                await asyncio.sleep(0.01)
        finally:
            flusher.cancel()
    assert _statuses(out) == [200]


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


def test_a_line_that_cannot_be_written_fails_no_request(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "time", lambda: clock[0])
    with json_logging():
        logging.getLogger().handlers[0].stream = BrokenStream()  # type: ignore[attr-defined]
        logs.info(logging.getLogger("api.access"), "request", {"status": 200})
        clock[0] += logs.JsonHandler.FLUSH_SECONDS
        logs.info(logging.getLogger("api.access"), "request", {"status": 201})  # no raise
    assert "disk full" in capsys.readouterr().err  # reported, as logging reports it
