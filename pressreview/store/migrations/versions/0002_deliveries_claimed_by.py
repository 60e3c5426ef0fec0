"""Repair stores created by the first release: add deliveries.claimed_by where it is missing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The first release's 0001 created the tables from schema.py as it then was,
before ``deliveries.claimed_by`` existed; the frozen 0001 creates the column.
Stores of the first release are stamped 0001 without it: this revision adds
it there and does nothing on stores that already have it (so it may run
after any later revision; it follows the newest one it was written against).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _has_claimed_by() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("deliveries")
    return any(column["name"] == "claimed_by" for column in columns)


def upgrade() -> None:
    if not _has_claimed_by():
        with op.batch_alter_table("deliveries") as batch:
            batch.add_column(sa.Column("claimed_by", sa.Text(), nullable=True))


def downgrade() -> None:
    # The column belongs to 0001's schema: going back to 0001 keeps it.
    pass
