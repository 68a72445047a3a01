"""Create the venue, its sections, event dates and seat blocks: only what is missing, so a
second run changes nothing (and never touches a price or flag an operator edited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import venue_seed
from ledger.models import EventDate, SeatBlock, Section, Venue


@dataclass
class SetupReport:
    venue_created: bool = False
    sections_created: list[str] = field(default_factory=list)
    dates_created: list[date] = field(default_factory=list)
    blocks_created: int = 0


def setup_venue(session: Session, event_dates: list[date]) -> SetupReport:
    report = SetupReport()
    venue = session.scalar(select(Venue).where(Venue.slug == venue_seed.VENUE_SLUG))
    if venue is None:
        venue = Venue(
            slug=venue_seed.VENUE_SLUG,
            name=venue_seed.VENUE_NAME,
            address=venue_seed.VENUE_ADDRESS,
            capacity=venue_seed.VENUE_CAPACITY,
            timezone=venue_seed.VENUE_TIMEZONE,
        )
        session.add(venue)
        session.flush()
        report.venue_created = True

    sections = {
        s.slug: s for s in session.scalars(select(Section).where(Section.venue_id == venue.id))
    }
    for order, seed in enumerate(venue_seed.SECTIONS, start=1):
        if seed.slug in sections:
            continue
        section = Section(
            venue_id=venue.id,
            slug=seed.slug,
            name=seed.name,
            section_type=seed.section_type,
            capacity=seed.capacity,
            rows=seed.rows,
            seats_per_row=seed.seats_per_row,
            price_cents=seed.price_cents,
            display_order=order,
            map_color=seed.map_color,
            map_coordinates=seed.map_coordinates,
        )
        session.add(section)
        sections[seed.slug] = section
        report.sections_created.append(seed.slug)
    session.flush()

    known_dates = set(
        session.scalars(select(EventDate.event_date).where(EventDate.venue_id == venue.id))
    )
    for day in sorted(set(event_dates) - known_dates):
        session.add(EventDate(venue_id=venue.id, event_date=day, name=venue_seed.EVENT_NAME))
        report.dates_created.append(day)
    session.flush()

    all_dates = known_dates | set(event_dates)
    existing = {
        (section_id, day)
        for section_id, day in session.execute(
            select(SeatBlock.section_id, SeatBlock.event_date)
            .join(Section)
            .where(Section.venue_id == venue.id)
        )
    }
    for section in sections.values():
        for day in sorted(all_dates):
            if (section.id, day) not in existing:
                session.add(SeatBlock(section_id=section.id, event_date=day))
                report.blocks_created += 1
    session.flush()
    return report
