"""The ledger's tables. Sold seats, orders and payments are true here; Redis mirrors them."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SectionType(enum.StrEnum):
    RESERVED = "reserved"
    GENERAL_ADMISSION = "general_admission"


def _uuid() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Venue(Base):
    __tablename__ = "venues"

    id: Mapped[uuid.UUID] = _uuid()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="America/Los_Angeles")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()

    sections: Mapped[list[Section]] = relationship(
        back_populates="venue", order_by="Section.display_order"
    )
    event_dates: Mapped[list[EventDate]] = relationship(
        back_populates="venue", order_by="EventDate.event_date"
    )

    def __str__(self) -> str:
        return self.name


class Section(Base):
    __tablename__ = "sections"
    __table_args__ = (
        UniqueConstraint("venue_id", "slug"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint(
            "section_type = 'general_admission' OR (rows > 0 AND seats_per_row > 0"
            " AND rows * seats_per_row = capacity)",
            name="reserved_geometry",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid()
    venue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    section_type: Mapped[SectionType] = mapped_column(
        Enum(SectionType, name="section_type", values_callable=lambda e: [m.value for m in e])
    )
    capacity: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    seats_per_row: Mapped[int | None] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    map_color: Mapped[str] = mapped_column(String(16), default="#888888")
    map_coordinates: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()

    venue: Mapped[Venue] = relationship(back_populates="sections")
    blocks: Mapped[list[SeatBlock]] = relationship(back_populates="section")

    def __str__(self) -> str:
        return self.name


class EventDate(Base):
    """A show day at the venue; its seat blocks are on sale until the day ends (venue time)."""

    __tablename__ = "event_dates"
    __table_args__ = (UniqueConstraint("venue_id", "event_date"),)

    id: Mapped[uuid.UUID] = _uuid()
    venue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    event_date: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()

    venue: Mapped[Venue] = relationship(back_populates="event_dates")

    def __str__(self) -> str:
        return f"{self.name} ({self.event_date.isoformat()})"


class SeatBlock(Base):
    """The inventory of one section on one event date (loaded into Redis as one block)."""

    __tablename__ = "seat_blocks"
    __table_args__ = (
        UniqueConstraint("section_id", "event_date"),
        CheckConstraint(
            "price_cents_override IS NULL OR price_cents_override >= 0", name="price_not_negative"
        ),
    )

    id: Mapped[uuid.UUID] = _uuid()
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.id", ondelete="CASCADE"))
    event_date: Mapped[date] = mapped_column(Date, index=True)
    price_cents_override: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()

    section: Mapped[Section] = relationship(back_populates="blocks")

    @property
    def price_cents(self) -> int:
        if self.price_cents_override is not None:
            return self.price_cents_override
        return self.section.price_cents

    def __str__(self) -> str:
        return f"{self.section.name} {self.event_date.isoformat()}"
