"""venue, sections, event dates, seat blocks

Revision ID: 0001
Revises:
Create Date: 2026-11-24 01:25:31.912673
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "venues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
        sa.UniqueConstraint("slug", name=op.f("uq_venues_slug")),
    )
    op.create_table(
        "event_dates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"],
            ["venues.id"],
            name=op.f("fk_event_dates_venue_id_venues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_dates")),
        sa.UniqueConstraint(
            "venue_id", "event_date", name=op.f("uq_event_dates_venue_id_event_date")
        ),
    )
    op.create_table(
        "sections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "section_type",
            sa.Enum("reserved", "general_admission", name="section_type"),
            nullable=False,
        ),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("seats_per_row", sa.Integer(), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("map_color", sa.String(length=16), nullable=False),
        sa.Column("map_coordinates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "section_type = 'general_admission' OR (rows > 0 AND seats_per_row > 0"
            " AND rows * seats_per_row = capacity)",
            name=op.f("ck_sections_reserved_geometry"),
        ),
        sa.CheckConstraint("capacity > 0", name=op.f("ck_sections_capacity_positive")),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_sections_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["venue_id"],
            ["venues.id"],
            name=op.f("fk_sections_venue_id_venues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sections")),
        sa.UniqueConstraint("venue_id", "slug", name=op.f("uq_sections_venue_id_slug")),
    )
    op.create_table(
        "seat_blocks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("section_id", sa.Uuid(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("price_cents_override", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "price_cents_override IS NULL OR price_cents_override >= 0",
            name=op.f("ck_seat_blocks_price_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["sections.id"],
            name=op.f("fk_seat_blocks_section_id_sections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_blocks")),
        sa.UniqueConstraint(
            "section_id", "event_date", name=op.f("uq_seat_blocks_section_id_event_date")
        ),
    )
    op.create_index(op.f("ix_seat_blocks_event_date"), "seat_blocks", ["event_date"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_seat_blocks_event_date"), table_name="seat_blocks")
    op.drop_table("seat_blocks")
    op.drop_table("sections")
    op.drop_table("event_dates")
    op.drop_table("venues")
    sa.Enum(name="section_type").drop(op.get_bind(), checkfirst=True)
