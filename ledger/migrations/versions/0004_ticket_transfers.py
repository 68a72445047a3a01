"""ticket transfers: a version a ticket, and the transfer log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("version", sa.Integer(), server_default=sa.text("1"),
                                       nullable=False))
    op.create_table(
        "ticket_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("pass_id", sa.Uuid(), nullable=True),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("old_code", sa.String(length=32), nullable=False),
        sa.Column("old_pass_code", sa.String(length=32), nullable=True),
        sa.Column("from_user_id", sa.String(length=128), nullable=True),
        sa.Column("from_email", sa.String(length=320), nullable=False),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_transfers_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["pass_id"], ["tickets.id"],
                                name=op.f("fk_ticket_transfers_pass_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_transfers")),
    )
    for column in ("ticket_id", "event_date", "old_code", "old_pass_code", "to_email"):
        op.create_index(op.f(f"ix_ticket_transfers_{column}"), "ticket_transfers", [column],
                        unique=False)


def downgrade() -> None:
    for column in ("ticket_id", "event_date", "old_code", "old_pass_code", "to_email"):
        op.drop_index(op.f(f"ix_ticket_transfers_{column}"), table_name="ticket_transfers")
    op.drop_table("ticket_transfers")
    op.drop_column("tickets", "version")
