"""Contrat de ville classification on items.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``items.contract`` holds the classification of an item about a contrat de
ville (JSON, NULL when the item is not about one); ``items.contract_source``
says who set it ("auto" or "staff"): a staff correction is never overwritten
by a later collect.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("contract", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("contract_source", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("contract_source")
        batch.drop_column("contract")
