"""accessible seating: a section's wheelchair spaces, a block's release to general sale

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sections", sa.Column("accessible_seats", sa.String(length=2000),
                                        server_default="", nullable=False))
    op.add_column("seat_blocks", sa.Column("accessible_released", sa.Boolean(),
                                           server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("seat_blocks", "accessible_released")
    op.drop_column("sections", "accessible_seats")
