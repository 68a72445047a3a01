"""What the ledger says each seat block is, in the shape the engine loads into Redis."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from amphi.accessible import AccessiblePair, parse_pairs
from amphi.block_spec import BlockKind, BlockSpec
from amphi.geometry import Geometry
from amphi.keys import BlockKeys
from amphi.venue_time import show_day_over
from ledger.models import EventDate, SeatBlock, Section, SectionType, Venue

log = logging.getLogger(__name__)


def accessible_pairs(section: Section) -> tuple[AccessiblePair, ...]:
    """The section's wheelchair spaces with their companions, in the order holds get them.
    The admin checks the text when it is saved; text that no longer fits the section (set
    another way) withholds nothing and is logged, rather than stopping the sale."""
    if not section.accessible_seats or section.section_type != SectionType.RESERVED:
        return ()
    try:
        return parse_pairs(section.accessible_seats,
                           Geometry(section.rows or 0, section.seats_per_row or 0))
    except ValueError as exc:
        log.error("accessible seats ignored", extra={"section": section.slug,
                                                     "reason": str(exc)})
        return ()


def block_specs(session: Session, *, now: datetime | None = None) -> list[BlockSpec]:
    """Every seat block, with the price and on-sale flag the hot path must apply."""
    rows = session.execute(
        select(SeatBlock, EventDate.is_active, Venue.timezone, Venue.is_active)
        .join(SeatBlock.section)
        .join(Section.venue)
        .join(
            EventDate,
            (EventDate.venue_id == Venue.id) & (EventDate.event_date == SeatBlock.event_date),
        )
        .options(joinedload(SeatBlock.section))
        .order_by(SeatBlock.event_date, Section.display_order)
    ).all()
    specs = []
    for block, date_active, tz, venue_active in rows:
        section = block.section
        reserved = section.section_type == SectionType.RESERVED
        on_sale = (
            block.is_active
            and section.is_active
            and date_active
            and venue_active
            and not show_day_over(block.event_date, tz, now)
        )
        # A reserved section has rows and seats a row by its reserved_geometry CHECK, except
        # that NULLs pass that CHECK; not narrowed here, as a check would change what fails.
        specs.append(
            BlockSpec(
                block=BlockKeys(block.event_date, section.slug),
                kind=BlockKind.RESERVED if reserved else BlockKind.GA,
                capacity=section.capacity,
                rows=cast(int, section.rows) if reserved else 1,
                seats_per_row=cast(int, section.seats_per_row) if reserved else section.capacity,
                price_cents=block.price_cents,
                active=on_sale,
                accessible=accessible_pairs(section),
                accessible_released=block.accessible_released,
            )
        )
    return specs
