"""The venue catalogue the API serves from memory: venues, sections, event dates.

Loaded from the ledger at start-up and refreshed every CATALOG_REFRESH_SECONDS, so the hot
path never asks SQL. Prices and on-sale flags the hot path applies live in Redis."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphi import errors
from amphi.accessible import AccessiblePair
from amphi.keys import BlockKeys
from amphi.venue_time import show_day_over
from ledger.inventory import accessible_pairs
from ledger.models import EventDate, Section, SectionType, Venue


@dataclass(frozen=True, slots=True)
class SectionInfo:
    id: uuid.UUID
    venue_id: uuid.UUID
    slug: str
    name: str
    section_type: str
    capacity: int
    rows: int | None
    seats_per_row: int | None
    price_cents: int
    display_order: int
    map_color: str
    map_coordinates: dict[str, Any]
    accessible: tuple[AccessiblePair, ...] = ()  # wheelchair spaces and companions

    @property
    def reserved(self) -> bool:
        return self.section_type == SectionType.RESERVED.value


@dataclass(frozen=True, slots=True)
class EventDateInfo:
    venue_id: uuid.UUID
    event_date: date
    name: str


@dataclass(frozen=True, slots=True)
class VenueInfo:
    id: uuid.UUID
    slug: str
    name: str
    address: str
    capacity: int
    timezone: str


@dataclass(frozen=True)
class Catalog:
    venues: dict[uuid.UUID, VenueInfo] = field(default_factory=dict)
    sections: dict[uuid.UUID, SectionInfo] = field(default_factory=dict)
    event_dates: list[EventDateInfo] = field(default_factory=list)

    @functools.cached_property
    def _dates(self) -> frozenset[tuple[uuid.UUID, date]]:
        """(venue, date) of every event date: the hot path's lookup, once per catalogue."""
        return frozenset((d.venue_id, d.event_date) for d in self.event_dates)

    def venue(self, venue_id: uuid.UUID) -> VenueInfo:
        try:
            return self.venues[venue_id]
        except KeyError:
            raise errors.VenueNotFound() from None

    @functools.cached_property
    def sections_by_text(self) -> dict[str, SectionInfo]:
        """Sections by their id as the contract writes it (lowercase, hyphenated): the hot
        path finds a request's section without parsing a UUID."""
        return {str(s.id): s for s in self.sections.values()}

    def section(self, section_id: uuid.UUID) -> SectionInfo:
        try:
            return self.sections[section_id]
        except KeyError:
            raise errors.SectionNotFound() from None

    def section_by_slug(self, slug: str) -> SectionInfo:
        for section in self.sections.values():
            if section.slug == slug:
                return section
        raise errors.SectionNotFound()

    def blocks(self) -> list[BlockKeys]:
        """Every seat block of the catalogue: each section on each event date of its venue."""
        return [BlockKeys(d.event_date, s.slug) for s in self.sections.values()
                for d in self.event_dates if d.venue_id == s.venue_id]

    def sections_of(self, venue_id: uuid.UUID) -> list[SectionInfo]:
        return sorted(
            (s for s in self.sections.values() if s.venue_id == venue_id),
            key=lambda s: (s.display_order, s.name),
        )

    def dates_on_sale(
        self, venue_id: uuid.UUID | None = None, now: datetime | None = None
    ) -> list[EventDateInfo]:
        return [
            d
            for d in self.event_dates
            if (venue_id is None or d.venue_id == venue_id)
            and not show_day_over(d.event_date, self.venues[d.venue_id].timezone, now)
        ]

    def on_sale_block(
        self, section: SectionInfo, event_date: date, now: datetime | None = None
    ) -> BlockKeys:
        """The block of `section` on `event_date`, if that date is on sale."""
        venue = self.venues[section.venue_id]
        if (venue.id, event_date) not in self._dates:
            raise errors.EventDateNotFound(
                f"There is no event at {venue.name} on {event_date.isoformat()}."
            )
        if show_day_over(event_date, venue.timezone, now):
            raise errors.EventDatePast()
        return BlockKeys(event_date, section.slug)


async def load_catalog(session: AsyncSession) -> Catalog:
    venues = {
        v.id: VenueInfo(v.id, v.slug, v.name, v.address, v.capacity, v.timezone)
        for v in await session.scalars(select(Venue).where(Venue.is_active))
    }
    sections = {
        s.id: SectionInfo(
            s.id,
            s.venue_id,
            s.slug,
            s.name,
            s.section_type.value,
            s.capacity,
            s.rows,
            s.seats_per_row,
            s.price_cents,
            s.display_order,
            s.map_color,
            s.map_coordinates,
            accessible_pairs(s),
        )
        for s in await session.scalars(select(Section).where(Section.is_active))
        if s.venue_id in venues
    }
    dates = [
        EventDateInfo(d.venue_id, d.event_date, d.name)
        for d in await session.scalars(
            select(EventDate).where(EventDate.is_active).order_by(EventDate.event_date)
        )
        if d.venue_id in venues
    ]
    return Catalog(venues, sections, dates)
