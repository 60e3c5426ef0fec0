"""What the last fetch of each source answered, for `feeds check`.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01

HTTP status, Content-Type and final address (after redirects) of the last
fetch, and the date of the newest entry the feed held when last read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_content_type", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("last_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("newest_entry_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("newest_entry_at")
        batch.drop_column("last_url")
        batch.drop_column("last_content_type")
        batch.drop_column("last_status")
