"""scan log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:05:27.368675
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("gate", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("venue_date", sa.Date(), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("festival_access_granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_scans_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
    )
    op.create_index(op.f("ix_scans_code"), "scans", ["code"], unique=False)
    op.create_index(
        "ix_scans_ticket_gate_day", "scans", ["ticket_id", "gate", "venue_date"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_scans_ticket_gate_day", table_name="scans")
    op.drop_index(op.f("ix_scans_code"), table_name="scans")
    op.drop_table("scans")
