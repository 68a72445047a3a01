"""Dates as the venue sees them: America/Los_Angeles, never the server's clock zone."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo


def venue_today(tz: str, now: datetime | None = None) -> date:
    if now is None:
        return _today(tz)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(tz)).date()


# tz -> (first and last second of the venue's current day, as Unix time, and that day):
# every hold asks which day it is, and the answer changes once a day.
_days: dict[str, tuple[float, float, date]] = {}


def _today(tz: str) -> date:
    now = time.time()
    start, end, today = _days.get(tz, (0.0, 0.0, date.min))
    if start <= now < end:
        return today
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(now, zone).date()
    midnight = datetime.combine(today, dt_time(), zone)
    _days[tz] = (midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), today)
    return today


def show_day_over(event_date: date, tz: str, now: datetime | None = None) -> bool:
    """A show day is on sale until midnight at its end, venue time."""
    return venue_today(tz, now) > event_date


def next_festival_dates(tz: str, now: datetime | None = None) -> list[date]:
    """June 19, 20 and 21 of the next festival whose last day has not ended."""
    today = venue_today(tz, now)
    year = today.year if today <= date(today.year, 6, 21) else today.year + 1
    first = date(year, 6, 19)
    return [first + timedelta(days=i) for i in range(3)]
