"""orders, tickets, festival passes, stripe events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 01:55:37.930633
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("order_number_seq", start=100001)))
    op.create_table(
        "ticket_types",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind", sa.Enum("amphitheater", "festival_day", name="ticket_kind"), nullable=False
        ),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("is_comp", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_types")),
        sa.UniqueConstraint("slug", name=op.f("uq_ticket_types_slug")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_number", sa.String(length=32), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("buyer_email", sa.String(length=320), nullable=False),
        sa.Column("buyer_first_name", sa.String(length=100), nullable=False),
        sa.Column("buyer_last_name", sa.String(length=100), nullable=False),
        sa.Column("section_id", sa.Uuid(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "paid",
                "completed",
                "failed",
                "expired",
                "refund_required",
                "refunded",
                name="order_status",
            ),
            nullable=False,
        ),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret", sa.String(length=255), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["section_id"], ["sections.id"], name=op.f("fk_orders_section_id_sections")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_orders_hold_id")),
        sa.UniqueConstraint("order_number", name=op.f("uq_orders_order_number")),
        sa.UniqueConstraint("payment_intent_id", name=op.f("uq_orders_payment_intent_id")),
    )
    op.create_index(op.f("ix_orders_buyer_email"), "orders", ["buyer_email"], unique=False)
    op.create_index(op.f("ix_orders_status"), "orders", ["status"], unique=False)
    op.create_index(op.f("ix_orders_user_id"), "orders", ["user_id"], unique=False)
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("seat_index", sa.Integer(), nullable=True),
        sa.Column("row", sa.String(length=8), nullable=True),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_no", name=op.f("uq_order_lines_order_id_line_no")),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_stripe_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_index(
        op.f("ix_stripe_events_payment_intent_id"),
        "stripe_events",
        ["payment_intent_id"],
        unique=False,
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column(
            "kind", sa.Enum("amphitheater", "festival_day", name="ticket_kind"), nullable=False
        ),
        sa.Column("ticket_type_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column(
            "status", sa.Enum("issued", "void", "refunded", name="ticket_status"), nullable=False
        ),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("is_comp", sa.Boolean(), nullable=False),
        sa.Column("qr_payload", sa.String(length=512), nullable=False),
        sa.Column("granted_by_id", sa.Uuid(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["tickets.id"], name=op.f("fk_tickets_granted_by_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_tickets_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
            name=op.f("fk_tickets_ticket_type_id_ticket_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("code", name=op.f("uq_tickets_code")),
        sa.UniqueConstraint("granted_by_id", name=op.f("uq_tickets_granted_by_id")),
    )
    op.create_index(op.f("ix_tickets_event_date"), "tickets", ["event_date"], unique=False)
    op.create_index(op.f("ix_tickets_order_id"), "tickets", ["order_id"], unique=False)
    op.create_index(op.f("ix_tickets_owner_email"), "tickets", ["owner_email"], unique=False)
    op.create_index(op.f("ix_tickets_owner_user_id"), "tickets", ["owner_user_id"], unique=False)
    op.create_table(
        "amphitheater_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("festival_day_ticket_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("section_id", sa.Uuid(), nullable=False),
        sa.Column("seat_index", sa.Integer(), nullable=True),
        sa.Column("row", sa.String(length=8), nullable=True),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("price_paid_cents", sa.Integer(), nullable=False),
        sa.Column(
            "status", sa.Enum("issued", "void", "refunded", name="ticket_status"), nullable=False
        ),
        sa.Column("includes_festival_access", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["festival_day_ticket_id"],
            ["tickets.id"],
            name=op.f("fk_amphitheater_tickets_festival_day_ticket_id_tickets"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_amphitheater_tickets_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["sections.id"],
            name=op.f("fk_amphitheater_tickets_section_id_sections"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_amphitheater_tickets_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amphitheater_tickets")),
        sa.UniqueConstraint(
            "festival_day_ticket_id", name=op.f("uq_amphitheater_tickets_festival_day_ticket_id")
        ),
        sa.UniqueConstraint(
            "order_id", "line_no", name=op.f("uq_amphitheater_tickets_order_id_line_no")
        ),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_amphitheater_tickets_ticket_id")),
    )
    op.create_index(
        op.f("ix_amphitheater_tickets_order_id"), "amphitheater_tickets", ["order_id"], unique=False
    )
    op.create_index(
        "uq_amphitheater_tickets_live_seat",
        "amphitheater_tickets",
        ["event_date", "section_id", "seat_index"],
        unique=True,
        postgresql_where=sa.text("seat_index IS NOT NULL AND status = 'issued'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_amphitheater_tickets_live_seat",
        table_name="amphitheater_tickets",
        postgresql_where=sa.text("seat_index IS NOT NULL AND status = 'issued'"),
    )
    op.drop_index(op.f("ix_amphitheater_tickets_order_id"), table_name="amphitheater_tickets")
    op.drop_table("amphitheater_tickets")
    op.drop_index(op.f("ix_tickets_owner_user_id"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_owner_email"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_order_id"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_event_date"), table_name="tickets")
    op.drop_table("tickets")
    op.drop_index(op.f("ix_stripe_events_payment_intent_id"), table_name="stripe_events")
    op.drop_table("stripe_events")
    op.drop_table("order_lines")
    op.drop_index(op.f("ix_orders_user_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_status"), table_name="orders")
    op.drop_index(op.f("ix_orders_buyer_email"), table_name="orders")
    op.drop_table("orders")
    op.drop_table("ticket_types")
    op.execute(sa.schema.DropSequence(sa.Sequence("order_number_seq")))
    for name in ("ticket_status", "ticket_kind", "order_status"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
