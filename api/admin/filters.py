"""List filters sqladmin lacks: one value of a date column, chosen from the dates present."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqladmin.filters import AllUniqueStringValuesFilter, get_column_obj
from sqlalchemy import Select, select
from starlette.requests import Request


class DateValuesFilter(AllUniqueStringValuesFilter):
    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select], Any]
    ) -> list[tuple[str, str]]:
        column = get_column_obj(self.column, model)
        days = await run_query(select(column).distinct().order_by(column))
        return [("__all", "All")] + [(row[0].isoformat(), row[0].isoformat()) for row in days]

    async def get_filtered_query(self, query: Select, value: Any, model: Any) -> Select:
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            return query  # "All", or a value no page offers
        return query.filter(get_column_obj(self.column, model) == day)
