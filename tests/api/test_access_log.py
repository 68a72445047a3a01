"""The JSON log lines every request writes: the fast formatter keeps the same shape."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

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
