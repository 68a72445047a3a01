"""Money in the admin: the ledger keeps integer cents, a person reads and types dollars."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from wtforms.fields import DecimalField


def dollars(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def dollars_column(model: Any, attribute: Any) -> str:
    """A list/detail formatter for a `*_cents` attribute."""
    return dollars(getattr(model, attribute if isinstance(attribute, str) else attribute.key))


def to_cents(text: str) -> int:
    """'125', '125.5', '$1,250.00' -> cents; ValueError for anything else, a negative
    amount or a fraction of a cent (a price is never rounded silently)."""
    cleaned = text.strip().removeprefix("$").replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("Enter an amount in dollars, such as 125.00.") from None
    if not amount.is_finite() or amount < 0 or int(amount.normalize().as_tuple().exponent) < -2:
        raise ValueError("Enter an amount of zero or more in whole cents, such as 125.00.")
    return int(amount * 100)


class DollarsField(DecimalField):
    """Shows a cents column in dollars and hands the form's data back in cents."""

    data: Decimal | int | None  # dollars when shown, cents once a post is valid

    def process_data(self, value: Any) -> None:
        self.data = None if value is None else Decimal(int(value)) / 100

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            self.data = to_cents(str(valuelist[0]))
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if self.data is None:
            return ""
        # After a valid post the data is cents; before it, dollars.
        value = self.data if isinstance(self.data, Decimal) else Decimal(self.data) / 100
        return f"{value:.2f}"

