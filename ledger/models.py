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
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
    func,
    text,
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
    # wheelchair spaces with their companion seats, "A1+A2, A5+A6" (amphi/accessible.py)
    accessible_seats: Mapped[str] = mapped_column(String(2000), default="", server_default="")
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
    # the box office put the section's accessible spaces on general sale for this date
    accessible_released: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = _created()

    section: Mapped[Section] = relationship(back_populates="blocks")

    @property
    def price_cents(self) -> int:
        if self.price_cents_override is not None:
            return self.price_cents_override
        return self.section.price_cents

    def __str__(self) -> str:
        return f"{self.section.name} {self.event_date.isoformat()}"


# -- orders, tickets, payments ------------------------------------------------------------
class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUND_REQUIRED = "refund_required"
    REFUNDED = "refunded"


class TicketKind(enum.StrEnum):
    AMPHITHEATER = "amphitheater"
    FESTIVAL_DAY = "festival_day"


class TicketStatus(enum.StrEnum):
    ISSUED = "issued"
    VOID = "void"
    REFUNDED = "refunded"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("total_cents >= 0", name="total_not_negative"),)

    id: Mapped[uuid.UUID] = _uuid()
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    hold_id: Mapped[uuid.UUID] = mapped_column(unique=True)  # one order per hold
    user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    buyer_email: Mapped[str] = mapped_column(String(320), index=True)
    buyer_first_name: Mapped[str] = mapped_column(String(100), default="")
    buyer_last_name: Mapped[str] = mapped_column(String(100), default="")
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.id"))
    event_date: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.PENDING, index=True
    )
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(255))
    demo: Mapped[bool] = mapped_column(default=False)
    failure_reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    section: Mapped[Section] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.order_number


class OrderLine(Base):
    """One seat (or one general-admission place) of an order."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)

    id: Mapped[uuid.UUID] = _uuid()
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    seat_index: Mapped[int | None] = mapped_column(Integer)
    row: Mapped[str | None] = mapped_column(String(8))
    seat: Mapped[int | None] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")


class TicketType(Base):
    __tablename__ = "ticket_types"

    id: Mapped[uuid.UUID] = _uuid()
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind, "ticket_kind"))
    event_date: Mapped[date] = mapped_column(Date)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    is_comp: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)

    def __str__(self) -> str:
        return self.name


class Ticket(Base):
    """The main ticket: what a gate scans. Amphitheatre tickets and comp festival passes."""

    __tablename__ = "tickets"

    id: Mapped[uuid.UUID] = _uuid()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind, "ticket_kind"))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_types.id"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    owner_user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    owner_email: Mapped[str] = mapped_column(String(320), index=True)
    event_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[TicketStatus] = mapped_column(
        _enum(TicketStatus, "ticket_status"), default=TicketStatus.ISSUED
    )
    price_cents: Mapped[int] = mapped_column(Integer)
    is_comp: Mapped[bool] = mapped_column(default=False)
    qr_payload: Mapped[str] = mapped_column(String(512))
    # Each transfer gives the ticket a new code and QR payload, signed with this version:
    # earlier payloads of the ticket stop opening any gate.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # A comp festival pass names the amphitheatre ticket that granted it: one pass a ticket.
    granted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id"), unique=True
    )
    ticket_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = _created()

    ticket_type: Mapped[TicketType] = relationship()

    def __str__(self) -> str:
        return self.code


class AmphitheaterTicket(Base):
    """A seat sold for one event date: the ledger's truth of what is sold."""

    __tablename__ = "amphitheater_tickets"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        # One ticket per reserved seat per date, whatever the engine does (pretix's lesson).
        Index(
            "uq_amphitheater_tickets_live_seat",
            "event_date",
            "section_id",
            "seat_index",
            unique=True,
            postgresql_where=text("seat_index IS NOT NULL AND status = 'issued'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid()
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), unique=True)
    festival_day_ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id"), unique=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    event_date: Mapped[date] = mapped_column(Date)
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.id"))
    seat_index: Mapped[int | None] = mapped_column(Integer)
    row: Mapped[str | None] = mapped_column(String(8))
    seat: Mapped[int | None] = mapped_column(Integer)
    price_paid_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[TicketStatus] = mapped_column(
        _enum(TicketStatus, "ticket_status"), default=TicketStatus.ISSUED
    )
    includes_festival_access: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()

    ticket: Mapped[Ticket] = relationship(foreign_keys=[ticket_id])
    festival_day_ticket: Mapped[Ticket | None] = relationship(
        foreign_keys=[festival_day_ticket_id]
    )
    section: Mapped[Section] = relationship()
    order: Mapped[Order] = relationship()


class StripeEvent(Base):
    """Each processed Stripe event once: duplicate deliveries find their id here."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    processed_at: Mapped[datetime] = _created()


class TicketTransfer(Base):
    """An amphitheatre ticket (and its festival pass) given by its owner to someone else:
    the codes it had, the version it got, who gave it and to whom."""

    __tablename__ = "ticket_transfers"

    id: Mapped[uuid.UUID] = _uuid()
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), index=True)
    pass_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"))
    event_date: Mapped[date] = mapped_column(Date, index=True)
    version: Mapped[int] = mapped_column(Integer)  # the ticket's version after it
    old_code: Mapped[str] = mapped_column(String(32), index=True)
    old_pass_code: Mapped[str | None] = mapped_column(String(32), index=True)
    from_user_id: Mapped[str | None] = mapped_column(String(128))
    from_email: Mapped[str] = mapped_column(String(320))
    to_email: Mapped[str] = mapped_column(String(320), index=True)
    email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()

    ticket: Mapped[Ticket] = relationship(foreign_keys=[ticket_id])

    def __str__(self) -> str:
        return f"{self.old_code} -> {self.to_email}"


class Scan(Base):
    """Every scan at every gate, admitted or not: who, where, when, and why."""

    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_ticket_gate_day", "ticket_id", "gate", "venue_date"),)

    id: Mapped[uuid.UUID] = _uuid()
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"))
    code: Mapped[str] = mapped_column(String(64), index=True)  # as presented (may be unknown)
    gate: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(String(128), default="")
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    venue_date: Mapped[date] = mapped_column(Date)
    admitted: Mapped[bool] = mapped_column()
    result: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    festival_access_granted: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(16), default="online")  # online | offline
    created_at: Mapped[datetime] = _created()

    ticket: Mapped[Ticket | None] = relationship()
