"""Dates as the venue sees them: America/Los_Angeles, never the server's clock zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def venue_today(tz: str, now: datetime | None = None) -> date:
    now = now or datetime.now(ZoneInfo("UTC"))
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(tz)).date()


def show_day_over(event_date: date, tz: str, now: datetime | None = None) -> bool:
    """A show day is on sale until midnight at its end, venue time."""
    return venue_today(tz, now) > event_date


def next_festival_dates(tz: str, now: datetime | None = None) -> list[date]:
    """June 19, 20 and 21 of the next festival whose last day has not ended."""
    today = venue_today(tz, now)
    year = today.year if today <= date(today.year, 6, 21) else today.year + 1
    first = date(year, 6, 19)
    return [first + timedelta(days=i) for i in range(3)]
